/**
 * The supervisor hook blob as the rest of mambapatch sees it: the file shipped for an architecture
 * (`shims/<arch>/mambapatch-hook.bin`, built by `npm run build`) and what it is.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError } from '../errors.js';
import { parseHookHeader, type HookHeader } from '../elf/hook-header.js';
import { PACKAGE_ROOT } from '../package.js';

export const HOOK_BLOB_FILENAME = 'mambapatch-hook.bin';

export interface HookBlob {
  bytes: Uint8Array;
  path: string;
  header: HookHeader;
}

/** Reads a hook blob file and checks its header (all shipped architectures are little-endian). */
export function readHookBlob(file: string): HookBlob {
  let bytes: Uint8Array;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new MambapatchError(`cannot read the hook blob: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  const header = parseHookHeader(bytes, true);
  if (!header || header.size !== bytes.length) throw new MambapatchError('not a mambapatch hook blob (bad header)', { file });
  return { bytes, path: file, header };
}

/** The shipped hook blob for `arch`. */
export function hookBlob(arch: string): HookBlob {
  const file = path.join(PACKAGE_ROOT, 'shims', arch, HOOK_BLOB_FILENAME);
  if (!fs.existsSync(file)) throw new MambapatchError(`no supervisor hook blob for ${arch} in this mambapatch package (npm run build builds it)`, { file });
  return readHookBlob(file);
}
