import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writeback } from './writeback.js';

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
  writeAtomicWith(file, (fd) => void writeAllAt(fd, typeof data === 'string' ? Buffer.from(data) : data, 0), opts);
}

/**
 * Writes all of `buf` at offset `pos`: a short write (a disk filling up, a file size limit) is continued,
 * so that it ends in an error instead of a silently shorter file. Returns the end offset.
 */
export function writeAllAt(fd: number, buf: Uint8Array, pos: number): number {
  for (let done = 0; done < buf.length; ) done += fs.writeSync(fd, buf, done, buf.length - done, pos + done);
  return pos + buf.length;
}

/** What `fill` gets: the temporary file's descriptor, and `wrote(bytes)` to report progress (early writeback). */
export type Fill<T> = (fd: number, wrote: (bytes: number) => void) => T;

/**
 * writeFileAtomic for content written by `fill` into the temporary file's descriptor (positional writes;
 * streaming edits). `fill` may throw (a failed verification): the temporary file is removed and nothing
 * is renamed.
 */
export function writeAtomicWith(file: string, fill: Fill<void>, opts: AtomicWriteOptions = {}): void {
  const t = new TempFile(file, opts);
  try {
    fill(t.fd, t.wrote);
  } catch (e) {
    t.discard();
    throw e;
  }
  t.commit();
}

/** writeAtomicWith for an asynchronous `fill` (the file editor's pipeline). */
export async function writeAtomicWithAsync(file: string, fill: Fill<Promise<void>>, opts: AtomicWriteOptions = {}): Promise<void> {
  const t = new TempFile(file, opts);
  try {
    await fill(t.fd, t.wrote);
  } catch (e) {
    t.discard();
    throw e;
  }
  t.commit();
}

/** The temporary file beside `file`: created empty, then committed (mode, owner, fsync, rename) or discarded. */
class TempFile {
  readonly fd: number;
  readonly path: string;
  private readonly dir: string;
  private readonly old?: fs.Stats;
  private readonly writeback: Writeback;
  readonly wrote = (bytes: number): void => this.writeback.wrote(bytes);

  constructor(
    private readonly file: string,
    private readonly opts: AtomicWriteOptions,
  ) {
    this.dir = path.dirname(file);
    try {
      this.old = fs.statSync(file);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    this.path = path.join(this.dir, `.${path.basename(file)}.mambapatch-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
    this.fd = fs.openSync(this.path, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    this.writeback = new Writeback(this.path);
  }

  discard(): void {
    this.writeback.end();
    fs.closeSync(this.fd);
    fs.rmSync(this.path, { force: true });
  }

  commit(): void {
    const { file, opts, old, fd } = this;
    try {
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
      fs.fchmodSync(fd, (opts.mode ?? (old ? old.mode : 0o666 & ~process.umask())) & 0o7777);
      fs.fsyncSync(fd);
    } catch (e) {
      this.discard();
      throw e;
    }
    this.writeback.end();
    fs.closeSync(fd);
    try {
      fs.renameSync(this.path, file);
    } catch (e) {
      fs.rmSync(this.path, { force: true });
      throw e;
    }
    fsyncDir(this.dir);
  }
}

/** writeFileAtomic with the bytes of another file, copied with a fixed buffer (memory does not grow with the file). */
export function copyFileAtomic(src: string, file: string, opts: AtomicWriteOptions = {}): void {
  writeAtomicWith(
    file,
    (fd, wrote) => {
      const from = fs.openSync(src, 'r');
      try {
        copyFd(from, fd, wrote);
      } finally {
        fs.closeSync(from);
      }
    },
    opts,
  );
}

/** Copies everything readable from descriptor `from` to the same offsets of `to`, 1 MiB at a time. */
export function copyFd(from: number, to: number, wrote: (bytes: number) => void): void {
  const buf = Buffer.alloc(1 << 20);
  for (let pos = 0; ; ) {
    const n = fs.readSync(from, buf, 0, buf.length, pos);
    if (n === 0) break;
    writeAllAt(to, buf.subarray(0, n), pos);
    wrote(n);
    pos += n;
  }
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
