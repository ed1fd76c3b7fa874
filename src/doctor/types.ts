/** The shapes every doctor check shares. */
import type * as fs from 'node:fs';
import type { StatusResult } from '../apply/core.js';

export type CheckStatus = 'ok' | 'warning' | 'problem';

/**
 * A permission change `doctor --fix --yes` may make: only chgrp to the prefix's group and chmod bits, on one
 * path, or (`tree-dirs`) on every directory of a tree that lacks them: an environment can hold more
 * directories than a finding can name.
 */
export type FixAction =
  | { path: string; op: 'chgrp'; gid: number }
  | { path: string; op: 'chmod'; add: number; remove: number }
  | { path: string; op: 'tree-dirs'; gid: number; add: number };

export interface CheckOutcome {
  status: CheckStatus;
  /** One line. */
  finding: string;
  /** The exact shell command that fixes it, when there is one. */
  fix?: string;
  /** The safe fixes `--fix --yes` applies (their commands make up `fix`). */
  actions?: FixAction[];
  /** Every item found, when the finding names only the first few. */
  details?: string[];
}

export interface Check {
  name: string;
  description: string;
  run(ctx: DoctorContext): CheckOutcome | Promise<CheckOutcome>;
}

export interface CheckResult extends CheckOutcome {
  name: string;
  description: string;
}

export interface DoctorContext {
  prefix: string;
  /** The invoking user. */
  uid: number;
  /** The prefix directory's owner and group: the group every shared file should have. */
  owner: number;
  gid: number;
  /** A readable name for a group ("condausers (4100)", or the number). */
  groupName(gid: number): string;
  /** stat of a path relative to the prefix ('' is the prefix), following symlinks; null when absent. */
  stat(rel: string): fs.Stats | null;
  /** lstat, for files inside the shared directories (symlinks are not judged). */
  lstat(rel: string): fs.Stats | null;
  env: NodeJS.ProcessEnv;
  /** The invoking user's home directory; '' when unknown (HOME unset, no passwd entry). */
  home: string;
  /** `mambapatch status` of the prefix, computed once for every check that needs it (throws what it throws). */
  status(): StatusResult;
}
