/**
 * The ELF test corpus, compiled at test time (each file once per content hash, through cachedBuild):
 * PIE, non-PIE and shared libraries for x86_64, aarch64 and ppc64le, with the linker flags the design
 * study names, lld-linked files and conda-build style `patchelf --force-rpath --set-rpath` copies; plus a
 * marker library (its constructor prints MARKER_LINE) and a dlopen host per architecture, and the
 * helpers that run a file under the real loader (qemu-user for foreign architectures).
 * Used by the corpus, fuzz and readelf tests and by bench/elf.ts (so no vitest imports here).
 */
import { execFileSync, spawn } from 'node:child_process';
import {
  closeSync,
  copyFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedBuild } from '../helpers/build.js';

/** Target architectures; 'x86_64-musl' is x86_64 linked against musl (its own loader). */
export type Arch = 'x86_64' | 'aarch64' | 'ppc64le' | 'x86_64-musl';
export type Kind = 'pie' | 'exec' | 'lib';

export interface CorpusFile {
  /** Unique, readable: `<arch>-<lang>-<kind>-<variant>`. */
  id: string;
  arch: Arch;
  kind: Kind;
  variant: string;
  path: string;
  /** A line the unmodified file prints when run (directly, or through the host for libraries). */
  expect: string;
  /** For libraries: the function the host calls (null: the host only dlopens it). */
  symbol?: string | null;
}

export const MARKER_NAME = 'libcorpusmarker.so';
export const MARKER_LINE = 'MARKER loaded';
export const LIB_SYMBOL = 'corpus_fn';

/** The repository root, found from this file whether it runs from test/ (vitest) or dist/test/ (bench). */
export const REPO = (() => {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'test', 'fixtures', 'elf', 'marker.c'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('cannot find the repository root from ' + import.meta.url);
    dir = up;
  }
  return dir;
})();
export const SRC = join(REPO, 'test', 'fixtures', 'elf');
const CACHE = '/tmp/mambapatch-fixture-cache';

interface ArchInfo {
  cc: string;
  cxx: string;
  strip: string;
  sysroot?: string;
  qemu?: string;
}
export const ARCHES: Record<Arch, ArchInfo> = {
  x86_64: { cc: 'gcc', cxx: 'g++', strip: 'strip' },
  aarch64: {
    cc: 'aarch64-linux-gnu-gcc',
    cxx: 'aarch64-linux-gnu-g++',
    strip: 'aarch64-linux-gnu-strip',
    sysroot: '/usr/aarch64-linux-gnu',
    qemu: 'qemu-aarch64',
  },
  'x86_64-musl': { cc: 'musl-gcc', cxx: 'no-c++-for-musl', strip: 'strip' },
  ppc64le: {
    cc: 'powerpc64le-linux-gnu-gcc',
    cxx: 'powerpc64le-linux-gnu-g++',
    strip: 'powerpc64le-linux-gnu-strip',
    sysroot: '/usr/powerpc64le-linux-gnu',
    qemu: 'qemu-ppc64le',
  },
};

/** Every tool the corpus needs to build and run. */
export const CORPUS_TOOLS = [
  'gcc', 'g++', 'ld.lld', 'patchelf', 'readelf', 'eu-elflint', 'eu-strip', 'strip',
  'aarch64-linux-gnu-gcc', 'powerpc64le-linux-gnu-gcc', 'aarch64-linux-gnu-g++', 'qemu-aarch64', 'qemu-ppc64le',
  'aarch64-linux-gnu-strip', 'powerpc64le-linux-gnu-strip', 'musl-gcc',
];

/**
 * A directory holding only an `ld.lld` symlink: cross gcc drivers look for the linker named by
 * -fuse-ld=lld in their -B directories, not on PATH.
 */
function lldDir(): string {
  const dir = join(CACHE, 'lld-bin');
  const link = join(dir, 'ld.lld');
  if (!existsSync(link)) {
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const tmp = `${link}.${process.pid}`;
    symlinkSync(execFileSync('sh', ['-c', 'command -v ld.lld'], { encoding: 'utf8' }).trim(), tmp);
    renameSync(tmp, link);
  }
  return dir;
}

const KIND_FLAGS: Record<Kind, string[]> = {
  pie: ['-fPIE', '-pie'],
  exec: ['-fno-pie', '-no-pie'],
  lib: ['-fPIC', '-shared', '-DAS_LIB'],
};

/** Linker variants: name → extra flags (a function so lld's -B directory is made only when used). */
const VARIANTS: Record<string, () => string[]> = {
  default: () => [],
  znow: () => ['-Wl,-z,now'],
  norelro: () => ['-Wl,-z,norelro'],
  noseparate: () => ['-Wl,-z,noseparate-code'],
  sysv: () => ['-Wl,--hash-style=sysv'],
  spare0: () => ['-Wl,--spare-dynamic-tags=0'],
  bigbss: () => ['-DBIG_BSS'],
  lld: () => ['-B', lldDir(), '-fuse-ld=lld'],
  lldbigbss: () => ['-DBIG_BSS', '-B', lldDir(), '-fuse-ld=lld'],
  gold: () => ['-fuse-ld=gold'],
  maxpage64k: () => ['-Wl,-z,max-page-size=65536', '-Wl,-z,common-page-size=65536'],
  buildidnone: () => ['-Wl,--build-id=none', '-Wl,--hash-style=both'],
  lldsep: () => ['-B', lldDir(), '-fuse-ld=lld', '-Wl,-z,separate-code'],
  // A .dynstr no cave can hold and a 1 MiB .bss: the new table needs a new PT_LOAD (tier D).
  manysyms: () => ['-DMANY_SYMBOLS', '-DBIG_BSS', '-DBSS_SIZE=(1<<20)', '-Wl,--export-dynamic'],
  // A GLOB_DAT whose symbol size reaches 4 MiB past the image, and a tier-D edit (new PT_LOAD) after it.
  bigreloc: () => ['-DMANY_SYMBOLS', '-DBIG_BSS', '-DBSS_SIZE=(256<<10)', '-DBIG_RELOC', '-Wl,--export-dynamic'],
  // Input for the conda-build "shorter rpath" case: a long build-prefix RPATH, as conda-build links.
  longrpath: () => ['-Wl,--disable-new-dtags', `-Wl,-rpath,/opt/conda-bld/pkg_1700000000000/_h_env_${'placehold_'.repeat(8)}/lib`],
};

function compile(arch: Arch, lang: 'c' | 'c++', kind: Kind, variant: string, id: string): string {
  const a = ARCHES[arch];
  const lib = kind === 'lib';
  return cachedBuild({
    name: lib ? `lib${id}.so` : id,
    compiler: lang === 'c' ? a.cc : a.cxx,
    args: ['-O1', ...KIND_FLAGS[kind], ...(lib ? [`-Wl,-soname,lib${id}.so`] : []), ...VARIANTS[variant]!()],
    sources: [join(SRC, lang === 'c' ? 'corpus.c' : 'corpus.cpp')],
    after: lang === 'c' ? ['-lm'] : [],
  });
}

/**
 * A copy of `input` processed by patchelf (e.g. conda-build's `--force-rpath --set-rpath`), next to the
 * input in the cache (so it is cached too).
 */
export function patchelfCopy(input: string, args: string[], tag: string): string {
  const out = `${input}.${tag}`;
  if (existsSync(out)) return out;
  const tmp = `${out}.tmp${process.pid}`;
  copyFileSync(input, tmp);
  execFileSync('patchelf', [...args, tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(tmp, out);
  return out;
}
const SHORT_RPATH = '$ORIGIN/../lib';
const LONG_RPATH = `$ORIGIN/../lib:$ORIGIN/../lib/${'python3.11/site-packages/'.repeat(6)}deep`;

function expectLine(lang: 'c' | 'c++', kind: Kind): string {
  return `ORIGINAL ${lang} ${kind === 'lib' ? 'library' : 'program'}: `;
}

/** The matrix. Cross architectures get the main variants; x86_64 gets all of them. */
export function corpus(): CorpusFile[] {
  const out: CorpusFile[] = [];
  const add = (arch: Arch, lang: 'c' | 'c++', kind: Kind, variant: string, path?: string) => {
    const id = `${arch}-${lang === 'c' ? 'c' : 'cxx'}-${kind}-${variant}`;
    out.push({ id, arch, kind, variant, path: path ?? compile(arch, lang, kind, variant, id), expect: expectLine(lang, kind) });
  };
  const kinds: Kind[] = ['pie', 'exec', 'lib'];
  for (const kind of kinds) {
    for (const variant of ['default', 'znow', 'norelro', 'noseparate', 'sysv', 'spare0', 'bigbss', 'lld', 'lldbigbss', 'manysyms', 'gold', 'maxpage64k', 'buildidnone', 'lldsep']) {
      add('x86_64', 'c', kind, variant);
    }
  }
  for (const kind of ['pie', 'lib'] as Kind[]) {
    for (const variant of ['default', 'lld']) add('x86_64', 'c++', kind, variant);
  }
  add('x86_64', 'c', 'lib', 'bigreloc');
  for (const arch of ['aarch64', 'ppc64le'] as Arch[]) {
    for (const kind of kinds) for (const variant of ['default', 'znow', 'spare0', 'lld']) add(arch, 'c', kind, variant);
    for (const kind of kinds) add(arch, 'c', kind, 'lldbigbss');
    for (const kind of ['pie', 'lib'] as Kind[]) add(arch, 'c', kind, 'manysyms');
  }
  // conda-build copies: a shorter rpath rewritten in place, and a longer one that makes patchelf move tables.
  // musl's loader (libc.so is the loader itself, which the engine must refuse; see corpus.test.ts).
  for (const kind of kinds) for (const variant of ['default', 'spare0']) add('x86_64-musl', 'c', kind, variant);
  for (const arch of ['x86_64', 'aarch64', 'ppc64le'] as Arch[]) {
    for (const kind of ['pie', 'lib'] as Kind[]) {
      if (arch === 'x86_64') {
        const long = compile(arch, 'c', kind, 'longrpath', `${arch}-c-${kind}-longrpath`);
        add(arch, 'c', kind, 'conda-short', patchelfCopy(long, ['--force-rpath', '--set-rpath', SHORT_RPATH], 'conda-short'));
      }
      const dflt = out.find((f) => f.id === `${arch}-c-${kind}-default`)!;
      add(arch, 'c', kind, 'conda-long', patchelfCopy(dflt.path, ['--force-rpath', '--set-rpath', LONG_RPATH], 'conda-long'));
      // No section headers at all (like sstrip): everything must come from the program headers.
      add(arch, 'c', kind, 'nosections', withoutSections(dflt.path));
      // A file another tool already gave an extra DT_NEEDED (patchelf's layout: moved tables, new LOAD).
      add(arch, 'c', kind, 'patchelf-needed', patchelfCopy(dflt.path, ['--add-needed', 'libm.so.6'], 'patchelf-needed'));
    }
  }
  return out;
}

/** Real distribution libraries (the host dlopens an edited copy by path); `variant` is 'system'. */
export function systemLibraries(): CorpusFile[] {
  const libs: [Arch, string, string][] = [
    ['x86_64', 'libstdc++', '/usr/lib/x86_64-linux-gnu/libstdc++.so.6'],
    ['x86_64', 'libz', '/usr/lib/x86_64-linux-gnu/libz.so.1'],
    ['x86_64', 'libm', '/usr/lib/x86_64-linux-gnu/libm.so.6'],
    ['aarch64', 'libstdc++', '/usr/aarch64-linux-gnu/lib/libstdc++.so.6'],
    ['aarch64', 'libm', '/usr/aarch64-linux-gnu/lib/libm.so.6'],
    ['ppc64le', 'libstdc++', '/usr/powerpc64le-linux-gnu/lib/libstdc++.so.6'],
    ['ppc64le', 'libm', '/usr/powerpc64le-linux-gnu/lib/libm.so.6'],
  ];
  return libs
    .filter(([, , p]) => existsSync(p))
    .map(([arch, name, p]) => ({ id: `${arch}-sys-${name}`, arch, kind: 'lib', variant: 'system', path: realpathSync(p), expect: 'HOST loaded ', symbol: null }));
}

/**
 * A copy without section headers, cut after the last byte a program header covers (what sstrip does);
 * e_shoff/e_shnum/e_shstrndx become 0. 64-bit little-endian inputs only (the whole corpus).
 */
export function withoutSections(input: string): string {
  const out = `${input}.nosections`;
  if (existsSync(out)) return out;
  const d = readFileSync(input);
  const phoff = Number(d.readBigUInt64LE(0x20));
  let end = phoff + d.readUInt16LE(0x38) * d.readUInt16LE(0x36);
  for (let i = 0; i < d.readUInt16LE(0x38); i++) {
    const p = phoff + i * d.readUInt16LE(0x36);
    end = Math.max(end, Number(d.readBigUInt64LE(p + 8) + d.readBigUInt64LE(p + 32)));
  }
  const copy = Buffer.from(d.subarray(0, end));
  copy.writeBigUInt64LE(0n, 0x28);
  copy.writeUInt16LE(0, 0x3c);
  copy.writeUInt16LE(0, 0x3e);
  const tmp = `${out}.tmp${process.pid}`;
  writeFileSync(tmp, copy, { mode: 0o755 });
  renameSync(tmp, out);
  return out;
}

/** The marker library for one architecture (SONAME = MARKER_NAME; LD_LIBRARY_PATH = its directory). */
export function markerLib(arch: Arch): string {
  return cachedBuild({
    name: MARKER_NAME,
    compiler: ARCHES[arch].cc,
    args: ['-O1', '-fPIC', '-shared', `-Wl,-soname,${MARKER_NAME}`],
    sources: [join(SRC, 'marker.c')],
  });
}

/** `host LIB [SYMBOL]` for one architecture: dlopens a library, calls the symbol. */
export function hostProgram(arch: Arch): string {
  return cachedBuild({ name: 'elf-host', compiler: ARCHES[arch].cc, args: ['-O1'], sources: [join(SRC, 'host.c')], after: ['-ldl'] });
}

/** Files the engine must refuse to edit (x86_64): a static executable and an ET_REL object. */
export function staticExecutable(): string {
  return cachedBuild({ name: 'corpus-static', compiler: 'gcc', args: ['-O1', '-static'], sources: [join(SRC, 'corpus.c')], after: ['-lm'] });
}
export function staticPie(): string {
  return cachedBuild({ name: 'corpus-static-pie', compiler: 'gcc', args: ['-O1', '-static-pie'], sources: [join(SRC, 'corpus.c')], after: ['-lm'] });
}
export function relocatableObject(): string {
  return cachedBuild({ name: 'corpus.o', compiler: 'gcc', args: ['-O1', '-c'], sources: [join(SRC, 'corpus.c')] });
}

/** An x86_64 file with a DT_NEEDED nothing uses (libm.so.6, no symbol versions needed from it). */
export function unusedLibm(kind: 'pie' | 'lib'): CorpusFile {
  const id = `x86_64-c-${kind}-unusedlibm`;
  const path = cachedBuild({
    name: kind === 'lib' ? `lib${id}.so` : id,
    compiler: 'gcc',
    args: ['-O1', ...KIND_FLAGS[kind], '-Wl,--no-as-needed'],
    sources: [join(SRC, 'corpus.c')],
    after: ['-lm'],
  });
  return { id, arch: 'x86_64', kind, variant: 'unusedlibm', path, expect: expectLine('c', kind) };
}

function isElf(path: string): boolean {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(4);
    return readSync(fd, b, 0, 4, 0) === 4 && b.readUInt32BE(0) === 0x7f454c46;
  } finally {
    closeSync(fd);
  }
}

/** Every regular ELF file under the roots, each once (symlinks resolved, never walked into twice). */
export function elfFilesUnder(roots: string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  const visit = (path: string): void => {
    let st = lstatSync(path);
    if (st.isSymbolicLink()) {
      try {
        st = statSync(path);
      } catch {
        return; // dangling
      }
      if (!st.isFile()) return; // never walk through a symlinked directory
    }
    if (st.isDirectory()) {
      for (const e of readdirSync(path).sort()) visit(join(path, e));
      return;
    }
    if (!st.isFile() || st.size < 4) return;
    const real = realpathSync(path);
    if (seen.has(real)) return;
    seen.add(real);
    try {
      if (isElf(real)) out.push(real);
    } catch {
      // unreadable: not ours to judge
    }
  };
  for (const r of roots) visit(r);
  return out;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command asynchronously (so several can run at once) with a time limit. */
export function runProcess(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env, timeoutMs = 60_000): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/**
 * Runs a corpus file (or an edited copy of it) under the real loader: executables directly, libraries
 * through the host program; foreign architectures under qemu-user with the cross sysroot. `libDir` goes
 * on LD_LIBRARY_PATH (the marker's directory).
 */
export function runElf(arch: Arch, kind: Kind, path: string, libDir?: string, symbol: string | null = LIB_SYMBOL): Promise<RunResult> {
  const a = ARCHES[arch];
  const argv = kind === 'lib' ? [hostProgram(arch), path, ...(symbol ? [symbol] : [])] : [path];
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  delete env.LD_PRELOAD;
  if (libDir) env.LD_LIBRARY_PATH = libDir;
  else delete env.LD_LIBRARY_PATH;
  if (a.qemu) return runProcess(a.qemu, ['-L', a.sysroot!, ...argv], env);
  return runProcess(argv[0]!, argv.slice(1), env);
}

/** What `readelf -hdW` says about one file (the header part only when -h was given). */
export interface ReadelfView {
  needed: string[];
  soname?: string;
  rpath?: string;
  runpath?: string;
  /** DT_STRSZ, the size of the dynamic string table. */
  strsz?: number;
  class?: string;
  data?: string;
  machine?: string;
}

/**
 * Parses `readelf -dW` (or -hdW) output for one or many files ([] NEEDED when the file has no dynamic
 * section). With a single file readelf prints no "File:" header; pass its name as `single`.
 */
export function parseReadelf(text: string, single?: string): Map<string, ReadelfView> {
  const out = new Map<string, ReadelfView>();
  let cur: ReadelfView | undefined;
  if (single !== undefined) out.set(single, (cur = { needed: [] }));
  for (const line of text.split('\n')) {
    const file = /^File: (.*)$/.exec(line);
    if (file) {
      out.set(file[1]!, (cur = { needed: [] }));
      continue;
    }
    if (!cur) continue;
    const dyn = /\((NEEDED|SONAME|RPATH|RUNPATH)\)\s+[\w ]+: \[(.*)\]$/.exec(line);
    if (dyn) {
      const [, tag, value] = dyn;
      if (tag === 'NEEDED') cur.needed.push(value!);
      else cur[tag!.toLowerCase() as 'soname' | 'rpath' | 'runpath'] = value!;
      continue;
    }
    const strsz = /\(STRSZ\)\s+(\d+) \(bytes\)$/.exec(line);
    if (strsz) cur.strsz = Number(strsz[1]);
    const hdr = /^\s+(Class|Data|Machine):\s+(.*)$/.exec(line);
    if (hdr) cur[hdr[1]!.toLowerCase() as 'class' | 'data' | 'machine'] = hdr[2]!.trim();
  }
  return out;
}

export async function readelfDynamic(path: string): Promise<ReadelfView> {
  const r = await runProcess('readelf', ['-dW', path]);
  if (r.status !== 0) throw new Error(`readelf -dW ${path}: ${r.stderr}`);
  return parseReadelf(r.stdout, path).get(path)!;
}
export const readelfNeeded = async (path: string): Promise<string[]> => (await readelfDynamic(path)).needed;

/** eu-elflint --gnu-ld output lines with the file name replaced (so two files' reports can be diffed). */
export async function elflintLines(path: string): Promise<string[]> {
  const r = await runProcess('eu-elflint', ['--gnu-ld', path]);
  return `${r.stdout}${r.stderr}`
    .split('\n')
    .map((l) => l.split(path).join('FILE').trim())
    .filter((l) => l !== '' && l !== 'No errors');
}

/** Lines in `after` that are not in `before` (as multisets). */
export function newLines(before: string[], after: string[]): string[] {
  const counts = new Map<string, number>();
  for (const l of before) counts.set(l, (counts.get(l) ?? 0) + 1);
  const fresh: string[] = [];
  for (const l of after) {
    const n = counts.get(l) ?? 0;
    if (n > 0) counts.set(l, n - 1);
    else fresh.push(l);
  }
  return fresh;
}

/**
 * A large executable (at least `mib` MiB): a program whose .rodata carries a `mib` MiB blob (.incbin of a
 * sparse file, so generating it is quick), linked with GNU ld. Cached like every fixture.
 */
export function bigExecutable(mib: number): string {
  const dir = '/tmp/mambapatch-fixture-cache/big-exe';
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const blob = join(dir, `blob-${mib}MiB.bin`);
  if (!existsSync(blob)) {
    const tmp = `${blob}.tmp${process.pid}`;
    writeFileSync(tmp, '');
    truncateSync(tmp, mib << 20);
    renameSync(tmp, blob);
  }
  const src = join(dir, `big-${mib}.c`);
  if (!existsSync(src)) {
    const text = [
      '#include <stdio.h>',
      `__asm__(".section .rodata\\n.globl big_blob\\n.type big_blob,@object\\nbig_blob:\\n.incbin \\"${blob}\\"\\n.size big_blob, .-big_blob\\n.previous");`,
      'extern const unsigned char big_blob[];',
      `int main(void) { printf("ORIGINAL big program: %d\\n", big_blob[${(mib << 20) - 1}] + 7); return 0; }`,
    ].join('\n');
    writeFileSync(`${src}.tmp${process.pid}`, text + '\n');
    renameSync(`${src}.tmp${process.pid}`, src);
  }
  return cachedBuild({ name: `big-${mib}MiB`, compiler: 'gcc', args: ['-O1'], sources: [src] });
}
