/** Human and JSON renderings of the core's results (the same data either way). */
import { paint, say, type OutputOptions } from '../output.js';
import { changes, planJson, type Step, type TargetStatus } from '../plan/types.js';
import type { RunResult, StatusResult } from './core.js';

const STATE_COLOUR: Record<TargetStatus['state'], 'green' | 'yellow' | 'red' | 'dim'> = {
  patched: 'green',
  unpatched: 'red',
  stale: 'red',
  unsupported: 'yellow',
  'not-affected': 'dim',
  untracked: 'yellow',
};

const KIND: Record<TargetStatus['kind'], string> = { mamba1: 'mamba 1.x', mamba2: 'mamba 2.x', micromamba: 'micromamba' };

export function targetLine(t: TargetStatus): string {
  const version = t.version ? ` ${t.version}` : '';
  const method = t.method && t.state !== 'unsupported' && t.state !== 'not-affected' ? ` [${t.method}]` : '';
  return `  ${paint(t.state.padEnd(12), STATE_COLOUR[t.state])} ${t.path}  (${KIND[t.kind]}${version}${method}) ${t.why}`;
}

function stepLine(s: Step): string {
  const verb = s.action.padEnd(14);
  return `  ${verb} ${s.path}  ${paint(s.detail, 'dim')}`;
}

function failuresLines(targets: TargetStatus[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const t of targets) {
    const key = `${t.install} ${t.failures.verdict}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const what =
      t.failures.verdict === 'not-affected'
        ? 'no known failure'
        : t.failures.verdict === 'unknown'
          ? `unknown: ${t.failures.note}`
          : t.failures.failures.map((f) => f.message).join('; ');
    out.push(`  ${t.install}${t.version ? ` (${t.version}, from ${t.versionFrom})` : ''}: ${what}`);
  }
  return out;
}

export function renderRun(res: RunResult, opts: OutputOptions & { verb: 'apply' | 'revert' }): void {
  const { plan } = res;
  say(opts, `${paint(`mambapatch ${opts.verb}`, 'bold')}: ${plan.prefix} (prefix from ${plan.prefixFrom})`);
  if (res.recovered) say(opts, `  finished an interrupted ${res.recovered.op} (pid ${res.recovered.pid}) first`);
  if (plan.targets.length) {
    say(opts, 'Targets:');
    for (const t of plan.targets) say(opts, targetLine(t));
    say(opts, 'Known failures:');
    for (const l of failuresLines(plan.targets)) say(opts, l);
  }
  const todo = changes(plan);
  if (todo.length) {
    say(opts, res.dryRun ? 'Would do (dry run, nothing changed):' : 'Done:');
    for (const s of todo) say(opts, stepLine(s));
  }
  for (const r of res.restored ?? []) {
    if (r.how === 'written') say(opts, `  ${r.path}: restored from backup.tar (the original inode was not available)`);
  }
  for (const n of plan.notes) say(opts, `  note: ${n}`);
  for (const w of plan.warnings) say(opts, `  ${paint('warning', 'yellow')}: ${w}`);
  if (todo.length === 0) {
    say(opts, opts.verb === 'apply' ? 'Nothing to change: every affected mamba is patched.' : res.changed ? 'Removed the mambapatch state.' : 'Nothing to change.');
  } else if (!res.dryRun) {
    say(opts, opts.verb === 'apply' ? `Patched: ${todo.length} file(s) changed; undo with \`mambapatch revert ${plan.prefix}\`.` : `Reverted: ${todo.length} file(s) changed; state removed.`);
  }
}

export function runJson(res: RunResult): unknown {
  return { ok: true, dryRun: res.dryRun, changed: res.changed, recovered: res.recovered ?? null, restored: res.restored ?? [], plan: planJson(res.plan) };
}

export function renderStatus(st: StatusResult, opts: OutputOptions): void {
  say(opts, `${paint('mambapatch status', 'bold')}: ${st.prefix} (prefix from ${st.prefixFrom})`);
  if (st.recovered) say(opts, `  finished an interrupted ${st.recovered.op} (pid ${st.recovered.pid}) first`);
  say(opts, 'Targets:');
  if (st.targets.length === 0) say(opts, '  (no mamba found)');
  for (const t of st.targets) say(opts, targetLine(t));
  say(opts, 'Shim:');
  if (!st.shim.present && st.methods.length > 0 && st.methods.every((m) => m === 'supervise')) say(opts, '  not used (the supervise method loads no library)');
  else say(
    opts,
    `  ${st.shim.path}: ${st.shim.present ? (st.shim.recognised ? 'present' : 'present, but not a mambapatch shim') : 'absent'}` +
      (st.shimVersion ? `, version ${st.shimVersion}` : '') +
      (st.shim.present && !st.shim.asInstalled && st.stateDir ? ', differs from what apply installed' : ''),
  );
  say(opts, `Method: ${st.methods.length ? st.methods.join(', ') : 'none (not applied)'}`);
  if (st.supervise) say(opts, `Supervise: ${st.supervise.supported ? 'supported' : paint('not supported', 'yellow')}: ${st.supervise.why}`);
  if (st.targets.length) {
    say(opts, 'Known failures:');
    for (const l of failuresLines(st.targets)) say(opts, l);
  }
  for (const n of st.notes) say(opts, `  note: ${n}`);
  for (const pr of st.problems) say(opts, `  ${paint('problem', 'red')}: ${pr}`);
}
