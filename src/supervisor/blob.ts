/**
 * The supervisor blob (method `supervise`) as the ELF engine sees it: a flat, position-independent
 * image whose header says what it is and where its entry code starts, and which `elf add-entry-hook`
 * copies into a new R+X PT_LOAD. Blob ABI v1 (integers little-endian on every supported target):
 *
 *   0..15   magic "MAMBAPATCH-HOOK\0"        16  u32 ABI version (1)
 *   20      u32 entry code offset            24  i64 entry delta = original e_entry - vaddr of byte 0
 *   32      u32 total size                   36  u32 reserved (0)
 *   40..103 NUL-padded "mambapatch-hook version=<version> arch=<arch>"
 *
 * The delta is 0 in the shipped file; the engine writes it. The entry code restores every register
 * (aarch64: all but x16, which holds the target; ppc64le: r12 = CTR = the target, as for a global entry)
 * and the stack pointer before it jumps to byte 0 + delta.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError, EXIT } from '../errors.js';
import { PACKAGE_ROOT, VERSION } from '../package.js';
import { SHIM_ARCHES, compilerHint, findCompiler, isShimArch } from '../shim/build.js';
import { cacheDir } from '../shim/index.js';
import { HOOK_FILENAME, buildHook } from './build.js';

export const HOOK_MAGIC = new Uint8Array([...'MAMBAPATCH-HOOK'].map((c) => c.charCodeAt(0)).concat(0));
export const HOOK_ABI = 1;
export const HOOK_DELTA_OFFSET = 24;
export const HOOK_SIZE_OFFSET = 32;
export const HOOK_ID_OFFSET = 40;
export const HOOK_HEADER_SIZE = 104;

export interface HookHeader {
  abi: number;
  entryOffset: number;
  deltaOffset: typeof HOOK_DELTA_OFFSET;
  size: number;
  /** `mambapatch-hook version=<v> arch=<arch>` */
  id: string;
  version: string;
  arch: string;
}

/** The header at the start of `bytes`, or undefined unless it is a mambapatch hook of ABI 1. */
export function parseHookHeader(bytes: Uint8Array): HookHeader | undefined {
  if (bytes.length < HOOK_HEADER_SIZE || HOOK_MAGIC.some((b, i) => bytes[i] !== b)) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const abi = dv.getUint32(16, true);
  if (abi !== HOOK_ABI) return undefined;
  const idBytes = bytes.subarray(HOOK_ID_OFFSET, HOOK_HEADER_SIZE);
  const nul = idBytes.indexOf(0);
  const id = Buffer.from(idBytes.subarray(0, nul < 0 ? idBytes.length : nul)).toString('latin1');
  const m = /^mambapatch-hook version=(\S+) arch=(\S+)$/.exec(id);
  if (!m) return undefined;
  const entryOffset = dv.getUint32(20, true);
  const size = dv.getUint32(HOOK_SIZE_OFFSET, true);
  if (entryOffset < HOOK_HEADER_SIZE || (size !== 0 && entryOffset >= size)) return undefined;
  return { abi, entryOffset, deltaOffset: HOOK_DELTA_OFFSET, size, id, version: m[1]!, arch: m[2]! };
}

/** Where `npm run build` puts the shipped blob for an architecture. */
export const prebuiltHook = (arch: string): string => path.join(PACKAGE_ROOT, 'shims', arch, HOOK_FILENAME);

function readCurrent(file: string, arch: string): Uint8Array | undefined {
  try {
    const bytes = new Uint8Array(fs.readFileSync(file));
    const h = parseHookHeader(bytes);
    return h && h.version === VERSION && h.arch === arch && h.size === bytes.length ? bytes : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The supervisor blob for `arch`: the shipped one when it is there and current, else one compiled into
 * the user cache. Throws naming the package to install when there is neither a blob nor a compiler.
 */
export function hookBlob(arch: string): { bytes: Uint8Array; path: string; version: string } {
  if (!isShimArch(arch))
    throw new MambapatchError(`no supervisor blob for architecture "${arch}" (supported: ${SHIM_ARCHES.join(', ')})`, {
      exitCode: EXIT.USAGE,
    });
  const shipped = prebuiltHook(arch);
  const bytes = readCurrent(shipped, arch);
  if (bytes) return { bytes, path: shipped, version: VERSION };
  const compiler = findCompiler(arch);
  if (!compiler)
    throw new MambapatchError(
      `no prebuilt ${arch} supervisor blob in this mambapatch package and no compiler to build one: ${compilerHint(arch)}, ` +
        `or install a mambapatch package that ships shims/${arch}`,
      { file: shipped },
    );
  const built = path.join(cacheDir(), VERSION, arch, HOOK_FILENAME);
  try {
    buildHook(arch, built, compiler);
  } catch (err) {
    throw new MambapatchError((err as Error).message, { file: built, cause: err });
  }
  const fresh = readCurrent(built, arch);
  if (!fresh) throw new MambapatchError('the supervisor blob built does not read back', { file: built });
  return { bytes: fresh, path: built, version: VERSION };
}
