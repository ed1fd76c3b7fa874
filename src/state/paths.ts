/** Where mambapatch keeps its state inside a prefix (README, "Files written"). */
import * as path from 'node:path';

export const STATE_DIR = '.mambapatch';

export interface StatePaths {
  dir: string;
  manifest: string;
  backup: string;
  journal: string;
  lock: string;
  watch: string;
  hook: string;
  /** Hard links to (or copies of) the original files, by their path in the prefix. */
  originals: string;
}

/** A manifest path as a file: relative to the prefix, or absolute (an executable outside it). */
export function inPrefix(prefix: string, rel: string): string {
  return path.resolve(prefix, rel);
}

/** Where the original of `rel` is kept under originals/ (outside files under `_outside/`). */
export function originalKey(rel: string): string {
  return rel.startsWith('/') ? `_outside${rel}` : rel;
}

/**
 * Names a run gives state files for its own duration: a new original before its rename (`.tmp<pid>`), and
 * what a run replaces, kept until it ends (`.prev<pid>`). Never archived; removed by the next run.
 */
export const tempName = (file: string, kind: 'tmp' | 'prev'): string => `${file}.${kind}${process.pid}`;
export const TEMP_NAME = /\.(tmp|prev)\d+$/;

export function statePaths(prefix: string): StatePaths {
  const dir = path.join(prefix, STATE_DIR);
  return {
    dir,
    manifest: path.join(dir, 'manifest.json'),
    backup: path.join(dir, 'backup.tar'),
    journal: path.join(dir, 'journal.json'),
    lock: path.join(dir, 'lock'),
    watch: path.join(dir, 'watch'),
    hook: path.join(dir, 'hook.sh'),
    originals: path.join(dir, 'originals'),
  };
}
