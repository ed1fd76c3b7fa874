/**
 * The library core behind `apply`, `revert` and `status`: resolve the prefix, check and lock the state,
 * finish an interrupted run, compute the plan, run it. Commands only render what these return.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError } from '../errors.js';
import { ATOMIC_TEMP_NAME } from '../fsutil/atomic.js';
import { buildApplyPlan, targetStates, usesShim } from '../plan/apply-plan.js';
import { buildRevertPlan } from '../plan/revert-plan.js';
import { isMambapatchShim, shimRel } from '../plan/shim.js';
import { changes, type Plan, type TargetStatus } from '../plan/types.js';
import { detect } from '../prefix/detect.js';
import { resolvePrefix, type ResolvedPrefix } from '../prefix/resolve.js';
import { fileMeta, walkTree } from '../state/files.js';
import { readJournal, removeTempFiles, type Journal } from '../state/journal.js';
import { acquireLock, lockHolder } from '../state/lock.js';
import { readManifest, type Manifest, type Method } from '../state/manifest.js';
import { TEMP_NAME, inPrefix, statePaths, type StatePaths } from '../state/paths.js';
import { checkTrusted } from '../state/trust.js';
import { shimVersion } from '../shim/index.js';
import { superviseSupport, type SuperviseSupport } from '../supervisor/kernel.js';
import { executeApply, executeRevert, removeLeftovers, writeWatch } from './execute.js';

export interface RunOptions {
  method?: 'auto' | Method;
  /** Executables outside the prefix that serve it (`--exe`), by path. */
  exes?: string[];
  dryRun?: boolean;
  /** Called once when another run holds the lock. */
  onWait?: (holder: string) => void;
}

export interface RunResult {
  plan: Plan;
  dryRun: boolean;
  /** Whether anything on disk changed. */
  changed: boolean;
  /** An interrupted run found (and finished) on the way. */
  recovered?: Journal;
  /** revert: how each restored file came back (renamed: the original inode; written: from backup.tar). */
  restored?: { path: string; how: string }[];
}

function prepare(arg: string | undefined): { r: ResolvedPrefix; p: StatePaths } {
  const r = resolvePrefix(arg);
  const p = statePaths(r.prefix);
  checkTrusted(p);
  return { r, p };
}

/** Holds the lock for `fn`, re-checking trust under it and clearing up after an interrupted run. */
function locked<T>(prefix: string, p: StatePaths, opts: RunOptions, fn: (journal: Journal | null) => T): T {
  const lock = acquireLock(p, { onWait: opts.onWait });
  try {
    checkTrusted(p);
    removeLeftovers(prefix);
    const journal = readJournal(p.journal);
    if (journal) removeTempFiles(prefix, journal.paths);
    removeStateTemps(p);
    return fn(journal);
  } finally {
    lock.release();
    tidy(p);
  }
}

export function apply(arg: string | undefined, opts: RunOptions = {}): RunResult {
  const { r, p } = prepare(arg);
  const method = opts.method ?? 'auto';
  const compute = (manifest: Manifest | null): Plan => {
    const detection = detect(r.prefix, outsideExes(manifest, opts.exes));
    if (detection.installs.length === 0) {
      throw new MambapatchError('no mamba found (looked for bin/mamba, condabin/mamba, bin/micromamba and their conda-meta records)', { file: r.prefix });
    }
    const plan = buildApplyPlan({ prefix: r.prefix, prefixFrom: r.how, detection, manifest, method });
    const fixable = plan.targets.filter((t) => t.state !== 'unsupported');
    if (fixable.length === 0) {
      throw new MambapatchError(`nothing can be patched: ${plan.targets[0]?.why ?? 'no target'}`, { file: r.prefix });
    }
    return plan;
  };
  if (opts.dryRun) {
    const plan = compute(readManifest(p.manifest));
    if (fs.existsSync(p.journal)) plan.notes.push('an interrupted run left a journal: apply will finish it');
    return { plan, dryRun: true, changed: false };
  }
  return locked(r.prefix, p, opts, (journal) => {
    const manifest = readManifest(p.manifest);
    const plan = compute(manifest);
    if (changes(plan).length === 0) {
      if (journal) {
        // The interrupted run had changed every file; finish its bookkeeping.
        if (manifest) writeWatch(r.prefix, p, manifest);
        fs.rmSync(p.journal, { force: true });
      }
      return { plan, dryRun: false, changed: journal !== null, recovered: journal ?? undefined };
    }
    preflight(r.prefix, plan);
    executeApply(r.prefix, p, plan, manifest, shimVersion());
    return { plan, dryRun: false, changed: true, recovered: journal ?? undefined };
  });
}

export function revert(arg: string | undefined, opts: RunOptions = {}): RunResult {
  const { r, p } = prepare(arg);
  const exists = fs.existsSync(p.dir);
  if (!exists && !opts.dryRun) removeLeftovers(r.prefix);
  if (opts.dryRun || !exists) {
    const plan = buildRevertPlan(r.prefix, r.how, exists ? readManifest(p.manifest) : null);
    if (!exists) plan.notes.push('no mambapatch state in this prefix: nothing to revert');
    return { plan, dryRun: Boolean(opts.dryRun), changed: false };
  }
  return locked(r.prefix, p, opts, (journal) => {
    if (fs.readdirSync(p.dir).every((n) => n === 'lock')) {
      // Only our lock is there (another run removed the state while we waited).
      const plan = buildRevertPlan(r.prefix, r.how, null);
      plan.notes.push('no mambapatch state in this prefix: nothing to revert');
      return { plan, dryRun: false, changed: false };
    }
    const plan = buildRevertPlan(r.prefix, r.how, readManifest(p.manifest));
    const done = executeRevert(r.prefix, p, plan);
    return {
      plan,
      dryRun: false,
      changed: true,
      recovered: journal ?? undefined,
      restored: done.filter((d) => d.how).map((d) => ({ path: d.step.path, how: d.how! })),
    };
  });
}

export interface ShimStatus {
  path: string;
  present: boolean;
  /** A mambapatch shim (any version). */
  recognised: boolean;
  /** Its bytes are what apply installed. */
  asInstalled: boolean;
}

export interface StatusResult {
  prefix: string;
  prefixFrom: string;
  targets: TargetStatus[];
  shim: ShimStatus;
  methods: Method[];
  shimVersion?: string;
  stateDir: boolean;
  /** An interrupted run that status finished, or could not (interrupted stays set). */
  recovered?: Journal;
  interrupted?: Journal;
  problems: string[];
  notes: string[];
  /** When a target uses (or would use) the supervise method: whether this kernel supports it. */
  supervise?: SuperviseSupport;
}

/** Reads the state of every target; finishes an interrupted run first when allowed to. */
export function status(arg: string | undefined): StatusResult {
  const { r, p } = prepare(arg);
  let recovered: Journal | undefined;
  let interrupted: Journal | undefined;
  const journal = readJournal(p.journal);
  const busy = journal ? lockHolder(p) : undefined;
  if (journal && !busy) {
    try {
      fs.accessSync(p.dir, fs.constants.W_OK);
      const done = journal.op === 'apply' ? apply(arg, { method: (journal.method as RunOptions['method']) ?? 'auto' }) : revert(arg);
      recovered = done.recovered ?? journal;
    } catch (e) {
      if (e instanceof MambapatchError) throw e;
      interrupted = journal;
    }
  }
  const manifest = readManifest(p.manifest);
  const detection = detect(r.prefix, outsideExes(manifest));
  const targets = targetStates(r.prefix, detection, manifest, 'auto');
  const shimAbs = path.join(r.prefix, shimRel());
  const cur = fileMeta(shimAbs);
  const shimEntry = manifest?.entries.find((e) => e.role === 'shim');
  const shim: ShimStatus = {
    path: shimAbs,
    present: cur !== null,
    recognised: cur !== null && isMambapatchShim(shimAbs),
    asInstalled: Boolean(cur && shimEntry && cur.sha256 === shimEntry.after.sha256),
  };
  const problems: string[] = [];
  for (const t of targets) {
    if (t.state === 'unpatched' || t.state === 'stale') problems.push(`${t.path}: ${t.why}`);
  }
  if (targets.some((t) => t.state === 'patched' && usesShim(t.method)) && !shim.asInstalled) {
    problems.push(`${shimRel()}: ${shim.present ? 'differs from the shim apply installed' : 'missing'}: patched files cannot load it; run apply`);
  }
  if (interrupted) problems.push(`an interrupted ${interrupted.op} (pid ${interrupted.pid}) needs finishing: run mambapatch ${interrupted.op} as its owner`);
  const notes = detection.skipped.map((s) => `${s.path}: ${s.reason}`);
  const supervise = superviseTargets(targets).length > 0 ? superviseSupport() : undefined;
  // Patched or not, a supervised executable runs unpatched on such a kernel: monitoring must see it.
  if (supervise && !supervise.supported) problems.push(`supervise: ${supervise.why}`);
  if (busy) notes.push(`a mambapatch run is in progress (${busy}); the state shown may change`);
  if (detection.installs.length === 0) notes.push('no mamba found in this prefix');
  return {
    prefix: r.prefix,
    prefixFrom: r.how,
    targets,
    shim,
    methods: [...new Set((manifest?.entries ?? []).filter((e) => e.role === 'target').map((e) => e.method))],
    shimVersion: manifest?.shimVersion,
    stateDir: fs.existsSync(p.dir),
    recovered,
    interrupted,
    problems,
    notes,
    ...(supervise ? { supervise } : {}),
  };
}

/**
 * Before changing anything: every file must be replaceable with its owner kept, which takes root or the
 * owner, and a writable directory. Fails with one line naming the file (exit 1, nothing changed).
 */
function preflight(prefix: string, plan: Plan): void {
  const me = process.getuid?.() ?? 0;
  for (const s of changes(plan)) {
    const abs = inPrefix(prefix, s.path);
    const dir = path.dirname(abs);
    try {
      fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
    } catch {
      throw new MambapatchError(`cannot write in ${dir}: run apply as the prefix owner or root`, { file: abs });
    }
    if (me !== 0 && s.after && s.after.uid !== me) {
      throw new MambapatchError(`owned by uid ${s.after.uid}: only its owner or root can replace it keeping its owner; run apply as uid ${s.after.uid} or root`, { file: abs });
    }
  }
}

/**
 * The targets that use the supervise method: recorded so in the manifest, or chosen for them when apply
 * runs with `auto` (a static executable, in the prefix or named with --exe).
 */
export const superviseTargets = (targets: TargetStatus[]): string[] => targets.filter((t) => t.method === 'supervise').map((t) => t.path);

/**
 * The executables outside the prefix to look at: those named now (made absolute, symlinks resolved by
 * detect's refusal) and those the manifest records.
 */
function outsideExes(manifest: Manifest | null, named: string[] = []): string[] {
  // A recorded one that is gone is left to revert (its manifest entry) and to status's missing targets.
  const recorded = (manifest?.entries ?? []).filter((e) => path.isAbsolute(e.path) && fs.existsSync(e.path)).map((e) => e.path);
  return [...new Set([...named.map((n) => path.resolve(n)), ...recorded])];
}

/** Temporary files of our own inside the state directory (originals/ links, backup.tar, atomic writes, what a run set aside). */
function removeStateTemps(p: StatePaths): void {
  walkTree(p.dir, (abs, d) => {
    if (!d.isDirectory() && (TEMP_NAME.test(d.name) || ATOMIC_TEMP_NAME.test(d.name))) fs.rmSync(abs, { force: true });
  });
}

/** A state directory holding nothing but what a no-op run made (its lock) is removed again. */
function tidy(p: StatePaths): void {
  try {
    const left = fs.readdirSync(p.dir);
    if (left.length === 0) fs.rmdirSync(p.dir);
  } catch {
    // gone or not ours to tidy
  }
}

