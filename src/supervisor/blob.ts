/**
 * The supervisor blob (method `supervise`): a flat, position-independent image (header: ABI v1, see
 * src/elf/hook-header.ts) which `elf add-entry-hook` copies into a new R+X PT_LOAD. Integers are
 * little-endian on every supported target; the delta is 0 in the shipped file and the engine writes it.
 * The entry code restores every register (aarch64: all but x16, which holds the target; ppc64le: r12 =
 * CTR = the target, as for a global entry) and the stack pointer before it jumps to byte 0 + delta.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError, EXIT } from '../errors.js';
import { PACKAGE_ROOT, VERSION } from '../package.js';
import { SHIM_ARCHES, compilerHint, findCompiler, isShimArch } from '../shim/build.js';
import { cacheDir } from '../shim/index.js';
import { HOOK_FILENAME, buildHook } from './build.js';
import { parseHookHeader } from '../elf/hook-header.js';

/** Where `npm run build` puts the shipped blob for an architecture. */
export const prebuiltHook = (arch: string): string => path.join(PACKAGE_ROOT, 'shims', arch, HOOK_FILENAME);

function readCurrent(file: string, arch: string): Uint8Array | undefined {
  try {
    const bytes = new Uint8Array(fs.readFileSync(file));
    const h = parseHookHeader(bytes, true);
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

/** A hook blob from a file (`elf add-entry-hook --blob`), checked to be one. */
export function readHookBlob(file: string): { bytes: Uint8Array; path: string } {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(fs.readFileSync(file));
  } catch (e) {
    throw new MambapatchError(`cannot read the hook blob: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
  }
  const h = parseHookHeader(bytes, true);
  if (!h || h.size !== bytes.length) throw new MambapatchError('not a mambapatch hook blob (ABI 1)', { file });
  return { bytes, path: file };
}
