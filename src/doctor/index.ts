/**
 * doctor: named checks of a shared prefix, each with a status, a one-line finding and the command that
 * fixes it. A check that throws is reported as a failed check (status problem), never a crash.
 */
import { CONFIG_CHECKS } from './checks/config.js';
import { envsWritable } from './checks/envs.js';
import { hardlinks } from './checks/hardlinks.js';
import { PATCH_CHECKS } from './checks/patch.js';
import { PERMISSION_CHECKS } from './checks/permissions.js';
import { privateCache } from './checks/private-cache.js';
import { condaMetaPresent } from './checks/records.js';
import { SUPERVISE_CHECKS } from './checks/supervise.js';
import { makeContext } from './context.js';
import { applyActions, mergeActions, type FixOutcome } from './fixes.js';
import type { Check, CheckResult, DoctorContext, FixAction } from './types.js';

export type { Check, CheckResult, CheckStatus, FixAction } from './types.js';

/** Every check, in the order they are reported. */
export const CHECKS: readonly Check[] = [
  condaMetaPresent,
  ...PERMISSION_CHECKS,
  envsWritable,
  hardlinks,
  privateCache,
  ...CONFIG_CHECKS,
  ...PATCH_CHECKS,
  ...SUPERVISE_CHECKS,
];

export interface DoctorReport {
  prefix: string;
  owner: number;
  group: string;
  checks: CheckResult[];
  summary: { ok: number; warning: number; problem: number };
}

export interface DoctorOptions {
  /** The checks to run (default: CHECKS). Tests pass their own list, e.g. one that throws. */
  checks?: readonly Check[];
  env?: NodeJS.ProcessEnv;
}

async function runOne(check: Check, ctx: DoctorContext): Promise<CheckResult> {
  try {
    return { name: check.name, description: check.description, ...(await check.run(ctx)) };
  } catch (e) {
    const why = e instanceof Error ? e.message.split('\n')[0] : String(e);
    return { name: check.name, description: check.description, status: 'problem', finding: `check failed: ${why}` };
  }
}

export async function runDoctor(prefix: string, opts: DoctorOptions = {}): Promise<DoctorReport> {
  const ctx = makeContext(prefix, opts.env);
  const checks: CheckResult[] = [];
  for (const c of opts.checks ?? CHECKS) checks.push(await runOne(c, ctx));
  const count = (s: string) => checks.filter((c) => c.status === s).length;
  return {
    prefix,
    owner: ctx.owner,
    group: ctx.groupName(ctx.gid),
    checks,
    summary: { ok: count('ok'), warning: count('warning'), problem: count('problem') },
  };
}

/** The safe permission fixes the report proposes, merged per path. */
export function plannedFixes(report: DoctorReport): FixAction[] {
  return mergeActions(report.checks.flatMap((c) => (c.status === 'ok' ? [] : c.actions ?? [])));
}

export function applyFixes(actions: FixAction[]): FixOutcome[] {
  return applyActions(actions, process.getuid?.() ?? 0);
}

export type { FixOutcome } from './fixes.js';
