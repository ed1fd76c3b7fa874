import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface AtomicWriteOptions {
  /** Mode for the new file; default: the mode of the file being replaced, else 0o644 & ~umask. */
  mode?: number;
  /** Owner for the new file; default: the owner of the file being replaced (when we may set it). */
  uid?: number;
  gid?: number;
}

/** The temporary names writeFileAtomic uses (`.<name>.mambapatch-<pid>-<hex>.tmp`), for cleaning up after a crash. */
export const ATOMIC_TEMP_NAME = /^\..*\.mambapatch-\d+-[0-9a-f]+\.tmp$/;

/**
 * Replace `file` atomically: write a temporary file in the same directory, fsync it, give it the old
 * file's mode and owner, rename it over the target and fsync the directory. A hard-linked target is
 * never written through (conda hard-links prefix files to pkgs/): the rename breaks the link, so the
 * other names keep the old bytes.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): void {
  writeAtomicWith(file, (fd) => void fs.writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data), opts);
}

/**
 * writeFileAtomic for content written by `fill` into the temporary file's descriptor (positional writes;
 * streaming edits). `fill` may throw (a failed verification): the temporary file is removed and nothing
 * is renamed.
 */
export function writeAtomicWith(file: string, fill: (fd: number) => void, opts: AtomicWriteOptions = {}): void {
  const dir = path.dirname(file);
  let old: fs.Stats | undefined;
  try {
    old = fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const mode = (opts.mode ?? (old ? old.mode : 0o666 & ~process.umask())) & 0o7777;
  const tmp = path.join(dir, `.${path.basename(file)}.mambapatch-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
  try {
    fill(fd);
    const uid = opts.uid ?? old?.uid;
    const gid = opts.gid ?? old?.gid;
    if (uid !== undefined && gid !== undefined && (uid !== process.getuid?.() || gid !== process.getgid?.())) {
      try {
        fs.fchownSync(fd, uid, gid);
      } catch (e) {
        // A non-root user may only keep a group it belongs to; the owner cannot change without root.
        if ((e as NodeJS.ErrnoException).code !== 'EPERM') throw e;
        if (uid !== process.getuid?.()) throw new Error(`${file}: cannot keep owner uid ${uid} (not root)`);
      }
    }
    // chmod after chown: chown clears set-id bits.
    fs.fchmodSync(fd, mode);
    fs.fsyncSync(fd);
  } catch (e) {
    fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fs.closeSync(fd);
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  fsyncDir(dir);
}

/** writeFileAtomic with the bytes of another file, copied with a fixed buffer (memory does not grow with the file). */
export function copyFileAtomic(src: string, file: string, opts: AtomicWriteOptions = {}): void {
  writeAtomicWith(
    file,
    (fd) => {
      const from = fs.openSync(src, 'r');
      try {
        const buf = Buffer.alloc(1 << 20);
        for (let pos = 0; ; ) {
          const n = fs.readSync(from, buf, 0, buf.length, pos);
          if (n === 0) break;
          for (let done = 0; done < n; ) done += fs.writeSync(fd, buf, done, n - done, pos + done);
          pos += n;
        }
      } finally {
        fs.closeSync(from);
      }
    },
    opts,
  );
}

export function fsyncDir(dir: string): void {
  let fd: number | undefined;
  try {
    fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    fs.fsyncSync(fd);
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}
