/**
 * manifest.json: every file mambapatch changed in a prefix, with its state before (null: it did not exist)
 * and after, the method and the shim version. `revert` and `status` work from it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError } from '../errors.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import type { FileMeta } from './files.js';

export type Role = 'shim' | 'target' | 'kept-original';
export type Method = 'needed' | 'launcher' | 'supervise';

export interface ManifestEntry {
  /** Relative to the prefix; absolute for an executable outside it (`apply --exe`). */
  path: string;
  role: Role;
  method: Method;
  /** The install (entry point, e.g. bin/mamba) this file serves. */
  install: string;
  /** null: the file did not exist before mambapatch. */
  before: FileMeta | null;
  after: FileMeta;
}

export interface Manifest {
  format: 1;
  tool: string;
  shimVersion: string;
  updated: string;
  entries: ManifestEntry[];
}

export function readManifest(file: string): Manifest | null {
  let raw: string;
  try {
    raw = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  let m: Manifest;
  try {
    m = JSON.parse(raw) as Manifest;
  } catch {
    throw new MambapatchError('not valid JSON: the state is damaged; restore it or remove the state directory', { file });
  }
  if (m.format !== 1 || !Array.isArray(m.entries)) throw new MambapatchError(`unknown manifest format ${String(m.format)}`, { file });
  for (const e of m.entries) {
    const outside = typeof e.path === 'string' && e.path.startsWith('/') && e.role === 'target' && e.method === 'supervise';
    if (typeof e.path !== 'string' || (e.path.startsWith('/') && !outside) || e.path.split('/').includes('..') || (outside && path.posix.normalize(e.path) !== e.path)) {
      throw new MambapatchError(`manifest entry with an unsafe path ${JSON.stringify(e.path)}`, { file });
    }
  }
  return m;
}

export function writeManifest(file: string, entries: ManifestEntry[], shimVersion: string, tool: string): Manifest {
  const m: Manifest = {
    format: 1,
    tool,
    shimVersion,
    updated: new Date().toISOString(),
    entries: [...entries].sort((a, b) => a.path.localeCompare(b.path)),
  };
  writeFileAtomic(file, JSON.stringify(m, null, 2) + '\n', { mode: 0o644, uid: process.getuid?.(), gid: process.getgid?.() });
  return m;
}
