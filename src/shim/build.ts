/**
 * Compiling the shim: which compiler serves an architecture, the flags that keep the library loadable
 * on glibc 2.17 (no stack protector or fortify symbols, no new symbol versions, no TLS of its own), and
 * a build that is redone only when the source, the version or the flags change.
 * Used by `scripts/build-shims.mjs` (prebuilt shims for the package) and by `shimPath` (on demand).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { TEMPLATES_DIR, VERSION } from '../package.js';
import { findOnPath } from '../prefix/resolve.js';

export const SHIM_ARCHES = ['x86_64', 'aarch64', 'ppc64le'] as const;
export type ShimArch = (typeof SHIM_ARCHES)[number];

/** GNU triples, the prefix of Debian's cross compilers (`aarch64-linux-gnu-gcc`). */
export const TRIPLES: Record<ShimArch, string> = {
  x86_64: 'x86_64-linux-gnu',
  aarch64: 'aarch64-linux-gnu',
  ppc64le: 'powerpc64le-linux-gnu',
};

/** Debian/Ubuntu packages that provide a cross compiler and its C library headers. */
const CROSS_PACKAGES: Record<ShimArch, string> = {
  x86_64: 'gcc-x86-64-linux-gnu libc6-dev-amd64-cross',
  aarch64: 'gcc-aarch64-linux-gnu libc6-dev-arm64-cross',
  ppc64le: 'gcc-powerpc64le-linux-gnu libc6-dev-ppc64el-cross',
};

export const CFLAGS = [
  '-shared', '-fPIC', '-O2', '-std=gnu11', '-Wall',
  '-fvisibility=hidden',
  '-fno-stack-protector', '-U_FORTIFY_SOURCE', '-D_FORTIFY_SOURCE=0',
  '-fno-delete-null-pointer-checks', // glibc's headers mark path arguments nonnull; our NULL checks stay
  '-fno-tree-loop-distribute-patterns', // no memcpy/memset calls
  '-ftls-model=global-dynamic', '-fno-plt',
  '-Wl,-soname,libmambapatch.so', '-Wl,-z,relro,-z,now', '-Wl,--hash-style=both',
  '-Wl,-z,nodelete', // never unloaded: patched GOT entries point into it
];

/** The architecture this process runs on, in mambapatch's names. */
export function hostArch(): string {
  switch (process.arch) {
    case 'x64': return 'x86_64';
    case 'arm64': return 'aarch64';
    case 'ppc64': return os.endianness() === 'LE' ? 'ppc64le' : 'ppc64';
    case 'ia32': return 'i386';
    case 'arm': return 'arm';
    case 's390x': return 's390x';
    default: return process.arch;
  }
}

export function isShimArch(arch: string): arch is ShimArch {
  return (SHIM_ARCHES as readonly string[]).includes(arch);
}

export function shimSource(): string {
  return path.join(TEMPLATES_DIR, 'shim', 'mambapatch_shim.c');
}

/** The rule header the shim and the supervisor blob both include (part of both build stamps). */
export function rulesHeader(): string {
  return path.join(TEMPLATES_DIR, 'rules', 'mambapatch_rules.h');
}

/** Compiler names tried for an architecture: the host's `cc`/`gcc` for the host, else `<triple>-gcc`. */
export function compilerNames(arch: ShimArch): string[] {
  const cross = `${TRIPLES[arch]}-gcc`;
  return arch === hostArch() ? ['cc', 'gcc', cross] : [cross];
}

export function findCompiler(arch: ShimArch): string | undefined {
  return findOnPath(compilerNames(arch), process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin');
}

/** What to install to get a compiler for an architecture (for error messages). */
export function compilerHint(arch: ShimArch): string {
  return arch === hostArch()
    ? 'install a C compiler (cc/gcc, e.g. `apt-get install gcc` or `dnf install gcc`)'
    : `install ${TRIPLES[arch]}-gcc (Debian/Ubuntu: \`apt-get install ${CROSS_PACKAGES[arch]}\`)`;
}

function stampOf(compiler: string, version: string): string {
  const h = createHash('sha256');
  h.update([path.basename(compiler), version, ...CFLAGS].join('\0'));
  h.update(fs.readFileSync(shimSource()));
  h.update(fs.readFileSync(rulesHeader()));
  return h.digest('hex');
}

/**
 * Builds the shim for `arch` at `output` with `compiler`, unless a build with the same source, version,
 * compiler and flags is already there. Returns true when it compiled. Throws the compiler's message.
 */
export function buildShim(arch: ShimArch, output: string, compiler: string, version = VERSION): boolean {
  const stamp = stampOf(compiler, version);
  const stampFile = `${output}.stamp`;
  if (fs.existsSync(output) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8').trim() === stamp) return false;
  fs.mkdirSync(path.dirname(output), { recursive: true });
  const tmp = `${output}.tmp${process.pid}`;
  try {
    execFileSync(compiler, [...CFLAGS, `-DMAMBAPATCH_VERSION="${version}"`, shimSource(), '-o', tmp], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, output);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(`${path.basename(compiler)} failed to build the ${arch} shim${stderr ? `: ${stderr.split('\n')[0]}` : ''}`);
  }
  fs.writeFileSync(stampFile, stamp + '\n');
  return true;
}
