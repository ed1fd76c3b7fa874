/**
 * journal.json: written before a run changes anything and removed when it has finished. Its presence
 * means a run was interrupted (kill -9, power loss); the manifest, written ahead of every change, says what
 * each file was and was to become, and every change is an atomic rename, so each file is in one of those
 * two states. Recovery removes the run's temporary files and lets the next run finish (apply) or redo
 * (revert) from the manifest.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ATOMIC_TEMP_NAME, writeFileAtomic } from '../fsutil/atomic.js';
import { inPrefix } from './paths.js';

export interface Journal {
  op: 'apply' | 'revert';
  pid: number;
  started: string;
  method?: string;
  /** Files (relative) the run may change. */
  paths: string[];
  /** Steps done so far, by path. */
  done: string[];
}

export function readJournal(file: string): Journal | null {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Journal;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    // A journal cut short by a crash still means "interrupted".
    return { op: 'apply', pid: 0, started: '', paths: [], done: [] };
  }
}

export function writeJournal(file: string, j: Journal): void {
  writeFileAtomic(file, JSON.stringify(j, null, 2) + '\n', { mode: 0o644, uid: process.getuid?.(), gid: process.getgid?.() });
}

/** Removes temporary files an interrupted atomic write may have left beside `files`. */
export function removeTempFiles(prefix: string, files: string[]): string[] {
  const removed: string[] = [];
  for (const dir of new Set(files.map((f) => path.dirname(inPrefix(prefix, f))))) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const n of names) {
      if (ATOMIC_TEMP_NAME.test(n)) {
        fs.rmSync(path.join(dir, n), { force: true });
        removed.push(path.join(dir, n));
      }
    }
  }
  return removed;
}
