/**
 * One mambapatch run per prefix at a time: `<prefix>/.mambapatch/lock`, created with O_EXCL and holding the
 * owner's pid and host. A lock whose process is gone (same host) is stale and is broken; otherwise the
 * next run waits for it (up to a timeout) and then re-reads the state.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { MambapatchError } from '../errors.js';
import { writeAllAt } from '../fsutil/atomic.js';
import type { StatePaths } from './paths.js';

export interface Lock {
  release(): void;
}

interface LockInfo {
  pid: number;
  host: string;
  started: string;
}

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

export function acquireLock(p: StatePaths, opts: { timeoutMs?: number; onWait?: (holder: string) => void } = {}): Lock {
  const timeout = opts.timeoutMs ?? Number(process.env.MAMBAPATCH_LOCK_TIMEOUT ?? 120) * 1000;
  const deadline = Date.now() + timeout;
  let told = false;
  for (;;) {
    try {
      fs.mkdirSync(p.dir, { mode: 0o755 });
      fs.chmodSync(p.dir, 0o755); // whatever the umask: members read the state (status)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let fd: number | undefined;
    try {
      fd = fs.openSync(p.lock, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o644);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') continue; // the state directory was just removed by a revert: make it again
      if (code !== 'EEXIST') throw new MambapatchError(`cannot create the lock: ${(e as Error).message}`, { file: p.lock });
    }
    if (fd !== undefined) {
      const info: LockInfo = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
      try {
        fs.fchmodSync(fd, 0o644);
        writeAllAt(fd, Buffer.from(JSON.stringify(info) + '\n'), 0);
      } catch (e) {
        fs.rmSync(p.lock, { force: true });
        throw new MambapatchError(`cannot create the lock: ${(e as Error).message}`, { file: p.lock });
      } finally {
        fs.closeSync(fd);
      }
      return { release: () => releaseLock(p, info) };
    }
    const raw = readRaw(p.lock);
    if (raw === undefined) continue;
    const holder = parse(raw);
    if (holder && isStale(holder)) {
      // Break it only if it still holds what we judged stale (another run may have just broken and re-taken it).
      if (readRaw(p.lock) === raw) fs.rmSync(p.lock, { force: true });
      continue;
    }
    if (!holder && lockAgeMs(p.lock) > 10_000) {
      fs.rmSync(p.lock, { force: true }); // empty or garbled for 10 s: its writer died mid-write
      continue;
    }
    if (Date.now() > deadline) {
      throw new MambapatchError(
        `another mambapatch run holds the lock (${describe(holder)}); wait for it, or remove the lock if that process is gone`,
        { file: p.lock },
      );
    }
    if (!told) opts.onWait?.(describe(holder));
    told = true;
    sleep(100);
  }
}

/** The live holder of the lock, described, or undefined when it is free or stale. */
export function lockHolder(p: StatePaths): string | undefined {
  const raw = readRaw(p.lock);
  if (raw === undefined) return undefined;
  const h = parse(raw);
  if (h && isStale(h)) return undefined;
  return describe(h);
}

function releaseLock(p: StatePaths, mine: LockInfo): void {
  const holder = parse(readRaw(p.lock) ?? '');
  if (holder && holder.pid === mine.pid && holder.host === mine.host) fs.rmSync(p.lock, { force: true });
}

function readRaw(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function parse(raw: string): LockInfo | undefined {
  try {
    const j = JSON.parse(raw) as LockInfo;
    return typeof j.pid === 'number' ? j : undefined;
  } catch {
    return undefined;
  }
}

function lockAgeMs(file: string): number {
  try {
    return Date.now() - fs.statSync(file).mtimeMs;
  } catch {
    return 0;
  }
}

function isStale(h: LockInfo): boolean {
  if (h.host !== os.hostname()) return false; // cannot tell: another machine sharing the filesystem
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function describe(h: LockInfo | undefined): string {
  return h ? `pid ${h.pid} on ${h.host} since ${h.started}` : 'unreadable lock file';
}
