/** Read a file, apply one edit, verify it and write it atomically (or to another path). */
import * as fs from 'node:fs';
import { MambapatchError } from '../errors.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import type { EditResult } from './result.js';
import { isVerified, verifyEdit } from './verify.js';

export interface EditFileOptions {
  /** Write the result here instead of replacing the input. */
  output?: string;
}

/**
 * Reads `path`, applies `edit`, verifies the result against the input and writes it atomically (keeping
 * mode and owner) over the file, or to `opts.output`. Nothing is written when the edit throws, changes
 * nothing (without --output), or fails verification.
 */
export function editElfFile(path: string, edit: (data: Uint8Array) => EditResult, opts: EditFileOptions = {}): EditResult {
  let data: Uint8Array;
  let st: fs.Stats;
  try {
    st = fs.statSync(path);
    if (!st.isFile()) throw new MambapatchError('not a regular file', { file: path });
    data = fs.readFileSync(path);
  } catch (e) {
    if (e instanceof MambapatchError) throw e;
    throw new MambapatchError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: path });
  }
  const result = edit(data);
  // Through a symlink (libfoo.so -> libfoo.so.1.2), edit the file it names and keep the link.
  const target = opts.output ?? fs.realpathSync(path);
  if (!result.changed && !opts.output) return result;
  if (result.changed && !isVerified(result.data)) verifyEdit(data, result.data, path);
  try {
    if (opts.output) writeFileAtomic(target, result.data, { mode: st.mode & 0o7777 });
    else writeFileAtomic(target, result.data);
  } catch (e) {
    throw new MambapatchError(`cannot write: ${(e as Error).message}`, { file: target });
  }
  return result;
}
