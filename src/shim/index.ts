/**
 * The shim library as the rest of mambapatch sees it: its file name in a prefix, its version, where the
 * file for an architecture is (shipped in the package, or compiled on demand into a per-user cache),
 * and what a given file is.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EXIT, MambapatchError, cannotRead } from '../errors.js';
import {
  SHIM_ARCHES, buildShim, compilerHint, findCompiler, hostArch, isShimArch,
  type ShimArch,
} from './build.js';
import { PACKAGE_ROOT, VERSION } from '../package.js';

export { SHIM_ARCHES, hostArch };
export const SHIM_FILENAME = 'libmambapatch.so';

/** The marker compiled into every shim: `@(#)mambapatch-shim version=<v> arch=<arch>`. */
const MARKER = '@(#)mambapatch-shim version=';

export function shimVersion(): string {
  return VERSION;
}

/** Where `npm run build` puts the shipped shims. */
export function prebuiltShim(arch: string): string {
  return path.join(PACKAGE_ROOT, 'shims', arch, SHIM_FILENAME);
}

/** A per-user cache for shims (and supervisor blobs) compiled on demand. */
export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  const candidates = [path.join(base, 'mambapatch'), path.join(os.tmpdir(), `mambapatch-${process.getuid?.() ?? 'user'}`)];
  for (const dir of candidates) {
    try {
      fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      fs.accessSync(dir, fs.constants.W_OK);
      return dir;
    } catch {
      // try the next one
    }
  }
  throw new MambapatchError('no writable cache directory to build the shim in', { file: candidates[0] });
}

function isCurrent(file: string): boolean {
  try {
    return shimInfo(file).version === shimVersion();
  } catch {
    return false;
  }
}

function checkArch(arch: string): ShimArch {
  if (!isShimArch(arch))
    throw new MambapatchError(`no shim for architecture "${arch}" (supported: ${SHIM_ARCHES.join(', ')})`, {
      exitCode: EXIT.USAGE,
    });
  return arch;
}

/**
 * The absolute path of the shim for `arch`: the shipped one when it is there and current, else one
 * compiled from the template with the architecture's compiler into the cache. Throws naming what is
 * missing when neither is possible.
 */
export function shimPath(arch: string = hostArch()): string {
  const a = checkArch(arch);
  const shipped = prebuiltShim(a);
  if (isCurrent(shipped)) return shipped;
  const compiler = findCompiler(a);
  if (!compiler)
    throw new MambapatchError(
      `no prebuilt ${a} shim in this mambapatch package and no compiler to build one: ${compilerHint(a)}, ` +
        'or install a mambapatch package that ships shims/' + a,
      { file: shipped },
    );
  const built = path.join(cacheDir(), shimVersion(), a, SHIM_FILENAME);
  try {
    buildShim(a, built, compiler);
  } catch (err) {
    throw new MambapatchError((err as Error).message, { file: built, cause: err });
  }
  return built;
}

/** Which architecture and shim version a file is; throws unless it is a mambapatch shim. */
export function shimInfo(file: string): { arch: string; version: string } {
  let data: Buffer;
  try {
    data = fs.readFileSync(file);
  } catch (err) {
    cannotRead(err, file);
  }
  if (data.length < 4 || data.readUInt32BE(0) !== 0x7f454c46) throw new MambapatchError('not an ELF file', { file });
  const at = data.indexOf(MARKER, 0, 'latin1');
  if (at < 0) throw new MambapatchError('not a mambapatch shim (no shim marker)', { file });
  const end = data.indexOf(0, at);
  const text = data.toString('latin1', at + MARKER.length, end < 0 ? undefined : end);
  const m = /^(\S+) arch=(\S+)$/.exec(text);
  if (!m) throw new MambapatchError('not a mambapatch shim (malformed shim marker)', { file });
  return { version: m[1]!, arch: m[2]! };
}
