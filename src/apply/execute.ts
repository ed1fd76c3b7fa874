/**
 * Runs a plan. Order of an apply: journal, originals and backup.tar, the manifest (ahead of any change),
 * then each file by atomic rename (shim first, then kept originals, then the targets), the watch list, and
 * last the journal's removal. A crash at any point leaves every file either as it was or as planned, and
 * the manifest names both states; the next run finishes from there.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cannotWrite } from '../errors.js';
import { copyFileAtomic, fsyncDir, writeFileAtomic } from '../fsutil/atomic.js';
import { changes, type Plan, type Step } from '../plan/types.js';
import { keepOriginal, restoreOriginal, writeBackup } from '../state/backup.js';
import { writeJournal, type Journal } from '../state/journal.js';
import { writeManifest, type Manifest, type ManifestEntry } from '../state/manifest.js';
import { inPrefix, originalKey, tempName, type StatePaths } from '../state/paths.js';
import { VERSION } from '../package.js';

const TOOL = `mambapatch ${VERSION}`;

/**
 * Test hooks: MAMBAPATCH_TEST_KILL_AT=N makes the process kill itself with SIGKILL at its N-th checkpoint
 * (between two durable steps), so tests can interrupt a run at every step, exactly as `kill -9` would;
 * MAMBAPATCH_TEST_FAIL_AT=N makes the N-th checkpoint fail as a write would (EIO), so tests can see an
 * apply roll back from every step.
 */
let checkpoints = 0;
export function checkpoint(): void {
  checkpoints++;
  if (Number(process.env.MAMBAPATCH_TEST_KILL_AT ?? 0) === checkpoints) process.kill(process.pid, 'SIGKILL');
  if (Number(process.env.MAMBAPATCH_TEST_FAIL_AT ?? 0) === checkpoints) {
    throw Object.assign(new Error('EIO: i/o error (MAMBAPATCH_TEST_FAIL_AT)'), { code: 'EIO' });
  }
}

export function executeApply(prefix: string, p: StatePaths, plan: Plan, previous: Manifest | null, shimVersion: string): Step[] {
  const todo = changes(plan);
  const journal: Journal = {
    op: 'apply',
    pid: process.pid,
    started: new Date().toISOString(),
    method: plan.method,
    paths: todo.map((s) => s.path),
    done: [],
  };
  writing(p.journal, () => writeJournal(p.journal, journal));
  const kept: string[] = [];
  const done: Step[] = [];
  // State files this run replaces (an earlier run's original of a file that changed since, backup.tar,
  // the manifest, the watch list) keep a second name until the run ends: a rollback renames them back. A
  // link, not a rename, so that a crash before the replacement leaves the file where it was.
  const aside: { file: string; at: string }[] = [];
  const setAside = (file: string): void => {
    if (!fs.existsSync(file)) return;
    const at = tempName(file, 'prev');
    fs.rmSync(at, { force: true });
    writing(file, () => {
      try {
        fs.linkSync(file, at);
      } catch {
        fs.copyFileSync(file, at); // a filesystem without hard links
      }
    });
    aside.push({ file, at });
  };
  try {
    checkpoint();
    let originals = false;
    for (const s of todo) {
      if (s.before && s.current && s.current.sha256 === s.before.sha256) {
        originals = true;
        const original = path.join(p.originals, originalKey(s.path));
        if (sameFile(original, inPrefix(prefix, s.path))) continue; // kept already, by an earlier run
        setAside(original);
        writing(inPrefix(prefix, s.path), () => keepOriginal(prefix, p, s.path));
        kept.push(s.path);
        checkpoint();
      }
    }
    if (originals) {
      setAside(p.backup);
      writing(p.backup, () => writeBackup(p));
      checkpoint();
    }
    const entries = new Map<string, ManifestEntry>((previous?.entries ?? []).map((e) => [e.path, e]));
    for (const s of todo) {
      entries.set(s.path, { path: s.path, role: s.role, method: s.method, install: s.install, before: s.before, after: s.after! });
    }
    setAside(p.manifest);
    const manifest = writing(p.manifest, () => writeManifest(p.manifest, [...entries.values()], shimVersion, TOOL));
    checkpoint();
    for (const s of todo) {
      writing(inPrefix(prefix, s.path), () => runApplyStep(prefix, s));
      done.push(s);
      journal.done.push(s.path);
      writing(p.journal, () => writeJournal(p.journal, journal));
      checkpoint();
    }
    setAside(p.watch);
    writing(p.watch, () => writeWatch(prefix, p, manifest));
    checkpoint();
  } catch (e) {
    try {
      rollBack(prefix, p, done, kept, aside, previous === null);
    } catch {
      // The journal stays: the next apply, revert or status finishes or undoes the run.
    }
    throw e;
  }
  for (const a of aside) fs.rmSync(a.at, { force: true });
  fs.rmSync(p.journal, { force: true });
  fsyncDir(p.dir);
  return todo;
}

/** Runs one write of the run; a system error becomes one line naming `file`. */
function writing<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    return cannotWrite(e, file);
  }
}

function runApplyStep(prefix: string, s: Step): void {
  const abs = inPrefix(prefix, s.path);
  const a = s.after!;
  if (s.action === 'keep-original') {
    linkAtomic(path.join(prefix, s.linkFrom!), abs);
    return;
  }
  if (s.source) copyFileAtomic(s.source, abs, { mode: a.mode, uid: a.uid, gid: a.gid });
  else writeFileAtomic(abs, s.data!, { mode: a.mode, uid: a.uid, gid: a.gid });
}

/** `dst` becomes another name of `src` (same inode), replacing atomically; a copy where linking fails. */
function linkAtomic(src: string, dst: string): void {
  const a = fs.statSync(src);
  const b = fs.lstatSync(dst, { throwIfNoEntry: false });
  if (b && a.dev === b.dev && a.ino === b.ino) return; // already another name of it (rename would be a no-op)
  const tmp = path.join(path.dirname(dst), `.${path.basename(dst)}.mambapatch-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    fs.linkSync(src, tmp);
  } catch {
    copyFileAtomic(src, dst, { mode: a.mode & 0o7777, uid: a.uid, gid: a.gid });
    return;
  }
  fs.renameSync(tmp, dst);
  fsyncDir(path.dirname(dst));
}

/**
 * After a failed write: put back what this run changed (the files, then every state file it replaced), and
 * remove what it added; the journal goes last.
 */
function rollBack(prefix: string, p: StatePaths, done: Step[], kept: string[], aside: { file: string; at: string }[], fresh: boolean): void {
  for (const s of [...done].reverse()) {
    const abs = inPrefix(prefix, s.path);
    if (!s.current) fs.rmSync(abs, { force: true });
    else if (s.before && s.current.sha256 === s.before.sha256) restoreOriginal(prefix, p, s.path, s.before);
  }
  for (const k of kept) fs.rmSync(path.join(p.originals, originalKey(k)), { force: true });
  if (fresh) for (const f of [p.manifest, p.backup, p.originals, p.watch]) fs.rmSync(f, { recursive: true, force: true });
  for (const a of [...aside].reverse()) fs.renameSync(a.at, a.file);
  fs.rmSync(p.journal, { force: true });
  fsyncDir(p.dir);
}

/** Whether `a` and `b` name the same inode (an original kept by an earlier run that still is the file). */
function sameFile(a: string, b: string): boolean {
  const x = fs.statSync(a, { throwIfNoEntry: false });
  const y = fs.statSync(b, { throwIfNoEntry: false });
  return Boolean(x && y && x.dev === y.dev && x.ino === y.ino);
}

/** `watch`: the absolute paths of the patched files, one per line (read by the shim's self-heal hook). */
export function writeWatch(prefix: string, p: StatePaths, m: Manifest): void {
  const lines = m.entries.filter((e) => e.role === 'target').map((e) => inPrefix(prefix, e.path));
  writeFileAtomic(p.watch, lines.map((l) => l + '\n').join(''), { mode: 0o644, uid: process.getuid?.(), gid: process.getgid?.() });
}

export function executeRevert(prefix: string, p: StatePaths, plan: Plan): { step: Step; how?: string }[] {
  const todo = changes(plan);
  writing(p.journal, () => writeJournal(p.journal, { op: 'revert', pid: process.pid, started: new Date().toISOString(), paths: todo.map((s) => s.path), done: [] }));
  checkpoint();
  const out: { step: Step; how?: string }[] = [];
  for (const s of todo) {
    const abs = inPrefix(prefix, s.path);
    if (s.action === 'restore') {
      out.push({ step: s, how: writing(abs, () => restoreOriginal(prefix, p, s.path, s.after!)) });
    } else {
      writing(abs, () => fs.rmSync(abs, { force: true }));
      fsyncDir(path.dirname(abs));
      out.push({ step: s });
    }
    checkpoint();
  }
  removeStateDir(prefix, p);
  return out;
}

/** Renames the state directory away (one atomic step), then deletes it. */
export function removeStateDir(prefix: string, p: StatePaths): void {
  const gone = path.join(prefix, `.mambapatch.removed-${process.pid}`);
  fs.renameSync(p.dir, gone);
  fsyncDir(prefix);
  checkpoint();
  fs.rmSync(gone, { recursive: true, force: true });
}

/** Leftovers of a removal interrupted after its rename. */
export function removeLeftovers(prefix: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(prefix);
  } catch {
    return;
  }
  for (const n of names) {
    if (!/^\.mambapatch\.removed-\d+$/.test(n)) continue;
    const st = fs.lstatSync(path.join(prefix, n));
    if (st.isDirectory() && (st.uid === process.getuid?.() || st.uid === 0)) fs.rmSync(path.join(prefix, n), { recursive: true, force: true });
  }
}
