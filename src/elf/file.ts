/**
 * Running a planned edit: on a file (positional reads of the input, one streaming pass into a temporary
 * file beside the target, the output's headers and tables read back and verified, then an atomic rename),
 * or in memory (the library API, tests, the fuzz worker).
 */
import * as fs from 'node:fs';
import { MambapatchError } from '../errors.js';
import { writeAtomicWith } from '../fsutil/atomic.js';
import { FileSource, withFileSource } from './bytes.js';
import { guarded } from './guard.js';
import { describe } from './info.js';
import { parseElf, type ElfFile } from './parse.js';
import { MemorySink, type Sink } from './plan.js';
import type { EditReport, EditResult, PreparedEdit } from './result.js';
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
    const sink = new MemorySink();
    const r = p.run(sink);
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
  constructor(readonly fd: number) {}
  write(buf: Uint8Array, off: number): void {
    for (let done = 0; done < buf.length; ) done += fs.writeSync(this.fd, buf, done, buf.length - done, off + done);
    this.size = Math.max(this.size, off + buf.length);
  }
  reset(): void {
    fs.ftruncateSync(this.fd, 0);
    this.size = 0;
  }
}

/**
 * Plans `prepare` from `path`'s headers and tables (positional reads), streams the result into a temporary
 * file beside the target, verifies it by reading its headers and tables back, and renames it over the file
 * (mode and owner kept; never written through a hard link) or to `opts.output`. Nothing is written when the
 * edit throws, changes nothing (without --output), or fails verification; the temporary file is removed.
 */
export function editElfFile(path: string, prepare: Prepare, opts: EditFileOptions = {}): EditReport {
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
    if (!st.isFile()) throw new MambapatchError('not a regular file', { file: path });
  } catch (e) {
    if (e instanceof MambapatchError) throw e;
    throw new MambapatchError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path });
  }
  const run = (): EditReport =>
    withFileSource(path, (src) => {
      const before = parseElf(src, path);
      const p = guarded(path, 'cannot edit', () => prepare(before));
      if (!p.run && !opts.output) return p.report;
      // Through a symlink (libfoo.so -> libfoo.so.1.2), edit the file it names and keep the link.
      const target = opts.output ?? fs.realpathSync(path);
      let report = p.report;
      try {
        writeAtomicWith(
          target,
          (fd) => {
            const sink = new FdSink(fd);
            if (!p.run) {
              copyAll(src, sink);
              return;
            }
            const r = p.run(sink);
            report = r.report;
            if (r.exact) return;
            const out = guarded(target, 'the edited file cannot be read back', () => parseElf(new FileSource(fd, sink.size), path));
            verifyElf(before, out, path);
            readBack(out, path, r.expectNeeded);
            r.check?.(out);
          },
          opts.output ? { mode: st.mode & 0o7777 } : {},
        );
      } catch (e) {
        if (e instanceof MambapatchError) throw e;
        throw new MambapatchError(`cannot write: ${(e as Error).message}`, { file: target });
      }
      return report;
    });
  try {
    return run();
  } catch (e) {
    if (e instanceof MambapatchError) throw e;
    throw new MambapatchError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path });
  }
}

function copyAll(src: FileSource, sink: Sink): void {
  const buf = Buffer.alloc(1 << 20);
  for (let off = 0; off < src.size; off += buf.length) {
    const n = Math.min(buf.length, src.size - off);
    src.read(buf, n, off);
    sink.write(buf.subarray(0, n), off);
  }
}
