/**
 * Originals: before a file is changed, `.mambapatch/originals/<path>` becomes a hard link to it (the same
 * inode: its bytes, mode, owner and its hard links to pkgs/ are kept exactly), or a copy where a link is
 * impossible (another filesystem). `backup.tar` holds the same bytes as a portable archive (headers by the
 * `tar` package, bodies streamed: ./tarstream.ts). Revert renames the original back (restoring link counts
 * too) or, failing that, writes the archived bytes with the recorded mode and owner.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MambapatchError } from '../errors.js';
import { copyFileAtomic, fsyncDir, writeAtomicWith } from '../fsutil/atomic.js';
import { sha256File, walkTree, type FileMeta } from './files.js';
import { TEMP_NAME, inPrefix, originalKey, tempName, type StatePaths } from './paths.js';
import { extractTarFile, writeTar } from './tarstream.js';

/** Keeps the current file at `rel` as the original; returns 'link' or 'copy'. */
export function keepOriginal(prefix: string, p: StatePaths, rel: string): 'link' | 'copy' {
  const src = inPrefix(prefix, rel);
  const dst = path.join(p.originals, originalKey(rel));
  for (let d = path.dirname(dst); d.length >= p.originals.length; d = path.dirname(d)) {
    if (fs.existsSync(d)) break;
    fs.mkdirSync(d, { recursive: true });
  }
  for (let d = path.dirname(dst); d.length >= p.originals.length; d = path.dirname(d)) fs.chmodSync(d, 0o755);
  const tmp = tempName(dst, 'tmp');
  fs.rmSync(tmp, { force: true });
  let how: 'link' | 'copy' = 'link';
  try {
    fs.linkSync(src, tmp);
  } catch {
    const st = fs.statSync(src);
    fs.copyFileSync(src, tmp);
    try {
      fs.chownSync(tmp, st.uid, st.gid);
    } catch {
      // not root: the copy keeps our ownership; revert writes the recorded owner where it can
    }
    fs.chmodSync(tmp, st.mode & 0o7777);
    how = 'copy';
  }
  fs.renameSync(tmp, dst);
  fsyncDir(path.dirname(dst));
  return how;
}

/** Writes backup.tar from every file under originals/ (atomically, streamed through a fixed buffer). */
export function writeBackup(p: StatePaths): void {
  const files = listFiles(p.originals).sort();
  writeAtomicWith(p.backup, (fd) => writeTar(fd, p.originals, files), { mode: 0o644, uid: process.getuid?.(), gid: process.getgid?.() });
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  walkTree(root, (abs, d) => {
    if (d.isFile() && !TEMP_NAME.test(d.name)) out.push(path.relative(root, abs));
  });
  return out;
}

/**
 * Copies the archived original of `rel` out of backup.tar into a new temporary directory (with a fixed
 * buffer: memory does not grow with the file) and passes its path to `use` (undefined when there is none);
 * the directory is removed after.
 */
export function withBackupFile<T>(p: StatePaths, rel: string, use: (file: string | undefined) => T): T {
  if (!fs.existsSync(p.backup)) return use(undefined);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambapatch-backup-'));
  try {
    const f = path.join(dir, 'original');
    return use(extractTarFile(p.backup, rel, f) ? f : undefined);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export type RestoreHow = 'renamed' | 'written';

/**
 * Puts the original of `rel` back: the kept inode when it still has the recorded bytes, mode and owner,
 * else the archived bytes (checked against the recorded hash) with the recorded mode and owner.
 */
export function restoreOriginal(prefix: string, p: StatePaths, rel: string, before: FileMeta): RestoreHow {
  const target = inPrefix(prefix, rel);
  const kept = path.join(p.originals, originalKey(rel));
  try {
    const st = fs.lstatSync(kept);
    if (
      st.isFile() &&
      (st.mode & 0o7777) === before.mode &&
      st.uid === before.uid &&
      st.gid === before.gid &&
      st.size === before.size &&
      sha256File(kept) === before.sha256
    ) {
      fs.renameSync(kept, target);
      fsyncDir(path.dirname(target));
      return 'renamed';
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const intact = (f: string | undefined): f is string => {
    try {
      return f !== undefined && fs.statSync(f).isFile() && sha256File(f) === before.sha256;
    } catch {
      return false;
    }
  };
  const write = (f: string | undefined): boolean => {
    if (!intact(f)) return false;
    copyFileAtomic(f, target, { mode: before.mode, uid: before.uid, gid: before.gid });
    return true;
  };
  if (!write(kept) && !withBackupFile(p, originalKey(rel), write)) {
    throw new MambapatchError('no intact backup of the original (originals/ and backup.tar both lack the recorded bytes)', { file: target });
  }
  return 'written';
}
