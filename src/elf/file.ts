/**
 * Running a planned edit: on a file (positional reads of the input, one streaming pass into a temporary
 * file beside the target, the output's headers and tables read back and verified, then an atomic rename),
 * or in memory (the library API, tests, the fuzz worker).
 *
 * On a file there are two writers of the same output: `editElfFile` writes each chunk before the next is
 * made (apply, which is synchronous), and `editElfFileAsync` (the `elf` commands) hands each chunk to the
 * thread pool and goes on reading and hashing the next ones meanwhile, with a few chunks in flight: on two
 * cores the SHA-256 of the undo record and the disk work overlap (libLLVM-14, 105 MiB: the streaming pass
 * drops from about 120 ms to 80 ms).
 */
import * as fs from 'node:fs';
import { MambapatchError, cannotRead, cannotWrite } from '../errors.js';
import { copyFd, writeAllAt, writeAtomicWith, writeAtomicWithAsync, type AtomicWriteOptions } from '../fsutil/atomic.js';
import { FileSource } from './bytes.js';
import { guarded } from './guard.js';
import { describe } from './info.js';
import { parseElf, type ElfFile } from './parse.js';
import { MemorySink, RESET, STREAM_CHUNK, drain, scratch, type Output, type Sink, type Take } from './plan.js';
import type { EditReport, EditResult, PreparedEdit, RunResult } from './result.js';
import { checkEdit, markVerified, verifyElf } from './verify.js';

export interface EditFileOptions {
  /** Write the result to this path instead of replacing the input. */
  output?: string;
}

/** Plans an edit from a parsed input (addNeeded, removeNeeded, ... take one of these). */
export type Prepare = (elf: ElfFile) => PreparedEdit;

function readBack(out: ElfFile, file: string, expect: string[] | undefined): void {
  if (!expect) return;
  const after = describe(out, { symbols: false }).needed;
  if (after.join('\0') !== expect.join('\0')) {
    throw new MambapatchError(`the edited file fails verification (DT_NEEDED reads back as ${JSON.stringify(after)}); nothing was written`, { file });
  }
}

/** Runs an edit on an image in memory; the result is verified (every untouched byte compared, too). */
export function editInMemory(data: Uint8Array, prepare: Prepare, file: string, what: string): EditResult {
  return guarded(file, what, () => {
    const p = prepare(parseElf(data, file));
    if (!p.run) return { ...p.report, data };
    const sink = new MemorySink(data.length);
    const r = drain(p.run(scratch()), sink);
    const out = sink.data();
    if (r.exact) markVerified(out); // the hash-checked original
    else {
      checkEdit(data, out, file, r.plan!);
      const after = parseElf(out, file);
      readBack(after, file, r.expectNeeded);
      r.check?.(after);
    }
    return { ...r.report, data: out };
  });
}

class FdSink implements Sink {
  size = 0;
  constructor(
    readonly fd: number,
    private readonly wrote: (bytes: number) => void,
  ) {}
  write(buf: Uint8Array, off: number): void {
    writeAllAt(this.fd, buf, off);
    this.size = Math.max(this.size, off + buf.length);
    this.wrote(buf.length);
  }
  reset(): void {
    fs.ftruncateSync(this.fd, 0);
    this.size = 0;
  }
}

/** Chunks in flight at once: enough to keep a disk busy while the next one is hashed. */
const IN_FLIGHT = 3;

function writeAt(fd: number, buf: Uint8Array, off: number): Promise<void> {
  return new Promise((resolve, reject) =>
    fs.write(fd, buf, 0, buf.length, off, (err, n) => {
      if (err) reject(err);
      else if (n < buf.length) writeAt(fd, buf.subarray(n), off + n).then(resolve, reject);
      else resolve();
    }),
  );
}

/**
 * Writes an output on the thread pool with up to IN_FLIGHT chunk buffers in flight: the producer fills
 * a free buffer while earlier ones are being written. A buffer is free again once every piece made from
 * it is written; a piece that overlaps one still in flight (the undo record over its zeroed place) waits
 * for it. Nothing is left in flight when this returns or throws (the caller then closes the descriptor).
 * Returns the output's result and the file's size.
 */
async function writeBehind<R>(run: (take: Take) => Output<R>, fd: number, wrote: (bytes: number) => void): Promise<{ result: R; size: number }> {
  const free: Buffer[] = [];
  const queue: Promise<Buffer>[] = [];
  const inFlight = new Set<{ off: number; end: number; done: Promise<void> }>();
  let buffers = 0;
  let current: { buf: Buffer; writes: Promise<void>[] } | undefined;
  // Every promise here is awaited, or settled before we return; none may count as unhandled meanwhile.
  const handled = <T>(p: Promise<T>): Promise<T> => (p.catch(() => {}), p);
  const release = (): void => {
    if (!current) return;
    const { buf, writes } = current;
    queue.push(handled(Promise.all(writes).then(() => buf)));
    current = undefined;
  };
  const take: Take = (n) => {
    release();
    // The loop keeps a buffer free before each step; a step that takes twice (it wrote nothing from the
    // first) gets a new one.
    const buf = free.pop() ?? (buffers++, Buffer.alloc(STREAM_CHUNK));
    current = { buf, writes: [] };
    return buf.subarray(0, n);
  };
  const settle = (): Promise<unknown> => Promise.allSettled([...inFlight].map((w) => w.done));
  let size = 0;
  try {
    const out = run(take);
    for (;;) {
      if (free.length === 0 && buffers >= IN_FLIGHT) free.push(await queue.shift()!);
      const step = out.next();
      if (step.done) {
        release();
        await Promise.all([...queue, ...[...inFlight].map((w) => w.done)]);
        return { result: step.value, size };
      }
      const piece = step.value;
      if (piece === RESET) {
        await Promise.all([...inFlight].map((w) => w.done));
        fs.ftruncateSync(fd, 0);
        size = 0;
        continue;
      }
      const end = piece.off + piece.buf.length;
      const before = [...inFlight].filter((w) => w.off < end && piece.off < w.end).map((w) => w.done);
      const w = { off: piece.off, end, done: Promise.resolve() };
      w.done = handled(
        Promise.all(before)
          .then(() => writeAt(fd, piece.buf, piece.off))
          .then(() => {
            inFlight.delete(w);
            wrote(piece.buf.length);
          }),
      );
      inFlight.add(w);
      if (current && piece.buf.buffer === current.buf.buffer) current.writes.push(w.done);
      size = Math.max(size, end);
    }
  } finally {
    await settle();
  }
}

interface Started {
  src: FileSource;
  before: ElfFile;
  p: PreparedEdit;
  target: string;
  atomic: AtomicWriteOptions;
  path: string;
}

/** After the output is written: its headers and tables read back from the descriptor and verified. */
function verifyWritten(s: Started, fd: number, size: number, r: RunResult): void {
  if (r.exact) return;
  const out = guarded(s.target, 'the edited file cannot be read back', () => parseElf(new FileSource(fd, size), s.path));
  verifyElf(s.before, out, s.path);
  readBack(out, s.path, r.expectNeeded);
  r.check?.(out);
}

/**
 * Opens and plans an edit of `path`, then hands it to `write` (which may be asynchronous: the input stays
 * open until it settles). Returns the plan's report without writing when the edit changes nothing and
 * there is no --output.
 */
function editing<T>(path: string, prepare: Prepare, opts: EditFileOptions, write: (s: Started) => T): T | EditReport {
  let st: fs.Stats;
  let fd: number;
  try {
    st = fs.statSync(path);
    if (!st.isFile()) throw new MambapatchError('not a regular file', { file: path });
    fd = fs.openSync(path, 'r');
  } catch (e) {
    return cannotRead(e, path);
  }
  let settlesLater = false;
  try {
    const src = new FileSource(fd, fs.fstatSync(fd).size);
    const before = parseElf(src, path);
    const p = guarded(path, 'cannot edit', () => prepare(before));
    if (!p.run && !opts.output) return p.report;
    // Through a symlink (libfoo.so -> libfoo.so.1.2), edit the file it names and keep the link.
    const target = opts.output ?? fs.realpathSync(path);
    const r = write({ src, before, p, target, path, atomic: opts.output ? { mode: st.mode & 0o7777 } : {} });
    if (r instanceof Promise) {
      settlesLater = true;
      return r.catch((e: unknown) => cannotRead(e, path)).finally(() => fs.closeSync(fd)) as T;
    }
    return r;
  } catch (e) {
    return cannotRead(e, path);
  } finally {
    if (!settlesLater) fs.closeSync(fd);
  }
}

/**
 * Plans `prepare` from `path`'s headers and tables (positional reads), streams the result into a temporary
 * file beside the target, verifies it by reading its headers and tables back, and renames it over the file
 * (mode and owner kept; never written through a hard link) or to `opts.output`. Nothing is written when the
 * edit throws, changes nothing (without --output), or fails verification; the temporary file is removed.
 */
export function editElfFile(path: string, prepare: Prepare, opts: EditFileOptions = {}): EditReport {
  return editing(path, prepare, opts, (s) => {
    let report = s.p.report;
    try {
      writeAtomicWith(
        s.target,
        (fd, wrote) => {
          if (!s.p.run) return copyFd(s.src.fd, fd, wrote);
          const sink = new FdSink(fd, wrote);
          const r = drain(s.p.run(scratch()), sink);
          report = r.report;
          verifyWritten(s, fd, sink.size, r);
        },
        s.atomic,
      );
    } catch (e) {
      cannotWrite(e, s.target);
    }
    return report;
  });
}

/** editElfFile with the output written on the thread pool while the next chunks are read and hashed. */
export async function editElfFileAsync(path: string, prepare: Prepare, opts: EditFileOptions = {}): Promise<EditReport> {
  return editing(path, prepare, opts, async (s) => {
    let report = s.p.report;
    try {
      await writeAtomicWithAsync(
        s.target,
        async (fd, wrote) => {
          if (!s.p.run) return copyFd(s.src.fd, fd, wrote);
          const { result: r, size } = await writeBehind(s.p.run, fd, wrote);
          report = r.report;
          verifyWritten(s, fd, size, r);
        },
        s.atomic,
      );
    } catch (e) {
      cannotWrite(e, s.target);
    }
    return report;
  });
}
