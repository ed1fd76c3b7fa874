/** A file's identity as the manifest records it: hash, size, mode, owner, link count. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface FileMeta {
  sha256: string;
  size: number;
  /** Permission bits including set-id and sticky (st_mode & 07777). */
  mode: number;
  uid: number;
  gid: number;
  /** Link count when recorded (before: hard links to pkgs/ are common). */
  nlink?: number;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256File(file: string): string {
  const h = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    fs.closeSync(fd);
  }
  return h.digest('hex');
}

/** The meta of a regular file, or null when there is none (a symlink or directory is not a file here). */
export function fileMeta(file: string): FileMeta | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return null;
    throw e;
  }
  if (!st.isFile()) return null;
  return { sha256: sha256File(file), size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, nlink: st.nlink };
}

export function metaOf(data: Uint8Array, like: { mode: number; uid: number; gid: number }): FileMeta {
  return { sha256: sha256(data), size: data.length, mode: like.mode, uid: like.uid, gid: like.gid };
}

export function octal(mode: number): string {
  return mode.toString(8).padStart(4, '0');
}

/** Calls `fn` for every entry below `dir` (depth first, sorted; an unreadable or missing directory is empty). */
export function walkTree(dir: string, fn: (abs: string, entry: fs.Dirent) => void): void {
  let names: fs.Dirent[];
  try {
    names = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const d of names.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const abs = path.join(dir, d.name);
    fn(abs, d);
    if (d.isDirectory()) walkTree(abs, fn);
  }
}
