/**
 * The plan: what apply or revert will do to each file, computed before anything changes. `--dry-run`
 * prints it, `--json` renders it, the executor runs it, status reads the same target states.
 */
import type { FailureReport } from '../prefix/known-failures.js';
import type { InstallKind } from '../prefix/detect.js';
import type { FileMeta } from '../state/files.js';
import type { Method, Role } from '../state/manifest.js';

export type TargetState = 'patched' | 'unpatched' | 'stale' | 'unsupported' | 'not-affected' | 'untracked';

/** One file mambapatch patches (or would), and what it is now. */
export interface TargetStatus {
  /** The install's entry point (bin/mamba, bin/micromamba). */
  install: string;
  kind: InstallKind;
  /** The file that carries the patch (the entry point, or lib/libmamba.so.N for `needed` on mamba 1.x). */
  path: string;
  method?: Method;
  state: TargetState;
  /** One line: why this state. */
  why: string;
  version?: string;
  versionFrom?: string;
  failures: FailureReport;
  arch?: string;
}

export type Action =
  | 'install-shim'
  | 'add-needed'
  | 'add-entry-hook'
  | 'keep-original'
  | 'write-launcher'
  | 'restore'
  | 'remove'
  | 'leave';

export interface Step {
  action: Action;
  /** Relative to the prefix. */
  path: string;
  role: Role;
  method: Method;
  install: string;
  /** The original state the manifest records (null: did not exist). */
  before: FileMeta | null;
  /** The state now. */
  current: FileMeta | null;
  /** The state the step leaves (null: removed; for 'leave', unchanged). */
  after: FileMeta | null;
  detail: string;
  /** Bytes to write (not rendered). */
  data?: Uint8Array;
  /** Or: a prepared file whose bytes to write (an edited ELF file, streamed; not rendered). */
  source?: string;
  /** keep-original: the file to link (relative). */
  linkFrom?: string;
}

export interface Plan {
  op: 'apply' | 'revert';
  prefix: string;
  /** How the prefix was chosen. */
  prefixFrom: string;
  method: 'auto' | Method;
  shim?: { source: string; version: string; arch: string };
  targets: TargetStatus[];
  steps: Step[];
  /** Files seen and not taken, things worth saying. */
  notes: string[];
  warnings: string[];
}

/** Steps that change something. */
export function changes(plan: Plan): Step[] {
  return plan.steps.filter((s) => s.action !== 'leave');
}

/** The plan as JSON-safe data (no file contents). */
export function planJson(plan: Plan): unknown {
  return { ...plan, steps: plan.steps.map(({ data: _d, source: _s, ...s }) => s) };
}
