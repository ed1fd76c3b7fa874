/**
 * Focused tests of the ELF engine: one real, gcc/lld-built fixture per tier and per refusal, each edit
 * checked by running the result under the real loader (qemu-user for aarch64 and ppc64le), by readelf
 * and eu-elflint, and by removing the entry again (byte-for-byte for our own edits).
 * The broad corpus, fuzzing and readelf agreement live in corpus/fuzz/readelf tests.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, copyFileSync, linkSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNeeded, editElfFile, prepareAdd, prepareRemove, readElf, removeNeeded } from '../../src/elf/index.js';
import { MambapatchError } from '../../src/errors.js';
import { decodeRecord, encodeRecord, type UndoRecord } from '../../src/elf/undo.js';
import { cachedBuild } from '../helpers/build.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';

const SOURCES: Record<string, string> = {
  'hello.c': `#include <stdio.h>
#include <math.h>
int main(int c, char **v) { printf("hello %d\\n", (int)sqrt(16.0 * c)); return 0; }
`,
  'marker.c': `#include <unistd.h>
__attribute__((constructor)) static void m(void) { static const char l[] = "MARKER loaded\\n"; (void)!write(1, l, sizeof l - 1); }
`,
  'lib.c': `int engine_fn(int x) { return x * 2; }
`,
  // Built with -nostdlib for architectures and byte orders without a cross libc here (reading only).
  'ext.c': `extern int ext(int);
int f(int x) { return ext(x) + 1; }
`,
  'stub.c': `int ext(int x) { return x; }
`,
  // dlopens a library and checks the program headers the loader found for it (dl_iterate_phdr: what
  // unwinding and TLS use) hold the PT_DYNAMIC it was relocated with.
  'host.c': `#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
static struct link_map *lib;
static int ok;
static int check(struct dl_phdr_info *i, size_t s, void *d) {
  if (i->dlpi_addr != lib->l_addr) return 0;
  for (int k = 0; k < i->dlpi_phnum; k++)
    if (i->dlpi_phdr[k].p_type == PT_DYNAMIC && (ElfW(Addr))lib->l_ld == i->dlpi_addr + i->dlpi_phdr[k].p_vaddr) ok = 1;
  return ok;
}
int main(int c, char **v) {
  void *h = dlopen(v[1], RTLD_NOW);
  puts(h ? "dlopen ok" : dlerror());
  if (!h) return 1;
  dlinfo(h, RTLD_DI_LINKMAP, &lib);
  dl_iterate_phdr(check, 0);
  puts(ok ? "headers ok" : "headers missing");
  return ok ? 0 : 2;
}
`,
  // An exported symbol whose name ends in "libmarker.so": its tail can serve as the DT_NEEDED string.
  'alias.c': `#include <stdio.h>
int engine_alias __asm__("my_libmarker.so") = 1;
int main(void) { printf("alias %d\\n", engine_alias); return 0; }
`,
  // Many long exported names and no .bss to speak of.
  'many.c': `${Array.from({ length: 1200 }, (_, i) => `int an_exported_function_with_a_long_name_${i}(int x) { return x + ${i}; }`).join('\n')}
`,
  // Many long exported names (a .dynstr too big for any padding) and a 1 MiB .bss (no cheap growth).
  // lld leaves no padding between segments: a page must be opened for the program headers.
  'lldbig.c': `#include <stdio.h>
static char big_bss[8 << 20];
int main(void) { big_bss[5] = 1; printf("lldbig %d\\n", big_bss[5]); return 0; }
`,
  'big.c': `#include <stdio.h>
char big_bss[1 << 20];
${Array.from({ length: 1200 }, (_, i) => `int an_exported_function_with_a_long_name_${i}(int x) { return x + ${i}; }`).join('\n')}
int main(void) { big_bss[7] = 1; printf("big %d\\n", an_exported_function_with_a_long_name_7(1) + big_bss[7]); return 0; }
`,
};

const CROSS = {
  x86_64: { cc: 'gcc', qemu: undefined, sysroot: undefined },
  aarch64: { cc: 'aarch64-linux-gnu-gcc', qemu: 'qemu-aarch64', sysroot: '/usr/aarch64-linux-gnu' },
  ppc64le: { cc: 'powerpc64le-linux-gnu-gcc', qemu: 'qemu-ppc64le', sysroot: '/usr/powerpc64le-linux-gnu' },
} as const;
type Arch = keyof typeof CROSS;

const TOOLS = ['gcc', 'readelf', 'eu-elflint', 'ld.lld', 'aarch64-linux-gnu-gcc', 'powerpc64le-linux-gnu-gcc', 'qemu-aarch64', 'qemu-ppc64le'];
const skip = missing({ tools: TOOLS });

let tmp: { dir: string; cleanup: () => void };
let src: string;

beforeAll(() => {
  tmp = worldTmp('elf-engine');
  // Sources live at a fixed path so cachedBuild's content hash finds earlier builds.
  src = '/tmp/mambapatch-engine-src';
  mkdirSync(src, { recursive: true, mode: 0o755 });
  for (const [name, text] of Object.entries(SOURCES)) writeFileSync(join(src, name), text);
});
afterAll(() => tmp?.cleanup());

function build(name: string, arch: Arch, args: string[], source: string, after: string[] = ['-lm']): string {
  return cachedBuild({ name, compiler: CROSS[arch].cc, args, sources: [join(src, source)], after });
}

/** The marker library for an architecture, in its own directory as libmarker.so. */
function markerDir(arch: Arch): string {
  const lib = build('libmarker.so', arch, ['-shared', '-fPIC'], 'marker.c', []);
  return lib.slice(0, lib.lastIndexOf('/'));
}

/** Runs an executable, or dlopens a library (lib*.so) from a host program, under the real loader. */
function run(arch: Arch, file: string): { status: number | null; out: string } {
  const c = CROSS[arch];
  const env = { ...process.env, LD_LIBRARY_PATH: markerDir(arch) };
  delete env.LD_PRELOAD;
  const argv = /lib[^/]*\.so[^/]*$/.test(file) ? [build('host', arch, [], 'host.c', []), file] : [file];
  const r = c.qemu
    ? spawnSync(c.qemu, ['-L', c.sysroot!, ...argv], { env, encoding: 'utf8' })
    : spawnSync(argv[0]!, argv.slice(1), { env, encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

function readelfNeeded(file: string): string[] {
  const out = execFileSync('readelf', ['-dW', file], { encoding: 'utf8' });
  return [...out.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]!);
}

function elflint(file: string): string[] {
  const r = spawnSync('eu-elflint', ['--gnu-ld', file], { encoding: 'utf8' });
  return `${r.stdout}${r.stderr}`.split('\n').map((l) => l.split(file).join('FILE').trim()).filter((l) => l && l !== 'No errors');
}

/** Adds libmarker.so to a copy, runs it, compares readelf and eu-elflint, removes it again. */
function roundTrip(arch: Arch, input: string, opts: { first?: boolean; tier?: RegExp; run?: boolean } = {}): { tier?: string; added: number; detail?: string } {
  const orig = readFileSync(input);
  const copy = join(tmp.dir, `${arch}-${opts.first ? 'first' : 'last'}-${input.split('/').pop()}`);
  copyFileSync(input, copy);
  const before = readElf(orig, copy);
  const r = editElfFile(copy, (elf) => prepareAdd(elf, 'libmarker.so', { file: copy, first: opts.first }));
  expect(r.changed).toBe(true);
  if (opts.tier) expect(r.tier).toMatch(opts.tier);
  const expected = opts.first ? ['libmarker.so', ...before.needed] : [...before.needed, 'libmarker.so'];
  expect(readElf(readFileSync(copy)).needed).toEqual(expected);
  expect(readelfNeeded(copy)).toEqual(expected);
  expect(elflint(copy)).toEqual(elflint(input));
  if (opts.run !== false) {
    const ran = run(arch, copy);
    expect(ran.out).toContain('MARKER loaded');
    expect(ran.status).toBe(0);
  }
  const back = editElfFile(copy, (elf) => prepareRemove(elf, 'libmarker.so', { file: copy }));
  expect(back.changed).toBe(true);
  expect(Buffer.compare(readFileSync(copy), orig)).toBe(0);
  return { tier: r.tier, added: r.bytesAdded, detail: r.detail };
}

describe.skipIf(skip)('elf engine: reading', () => {
  it('reads what readelf reads, on every architecture', () => {
    for (const arch of Object.keys(CROSS) as Arch[]) {
      const exe = build('hello', arch, [], 'hello.c');
      const info = readElf(readFileSync(exe), exe);
      expect(info.machine).toBe(arch);
      expect(info.bits).toBe(64);
      expect(info.endian).toBe('little');
      expect(info.kind).toBe('pie');
      expect(info.needed).toEqual(readelfNeeded(exe));
      expect(info.interpreter).toMatch(/ld/);
      expect(info.importedSymbols).toEqual(expect.arrayContaining(['printf', 'sqrt']));
      expect(info.glibcMax).toMatch(/^2\.\d+$/);
      expect(info.editable).toBe(true);
    }
  });

  it('reads SONAME, RUNPATH and static TLS flags', () => {
    const lib = build('libsoname.so', 'x86_64', ['-shared', '-fPIC', '-Wl,-soname,libsoname.so.1', '-Wl,-rpath,/opt/x', '-Wl,--enable-new-dtags', '-Wl,-z,now', '-ftls-model=initial-exec'], 'lib.c', []);
    const info = readElf(readFileSync(lib), lib);
    expect(info.soname).toBe('libsoname.so.1');
    expect(info.runpath).toBe('/opt/x');
    expect(info.rpath).toBeUndefined();
    expect(info.kind).toBe('library');
  });

  it('reads ELF32 and big-endian files (i386, ppc64, aarch64_be)', () => {
    const cases = [
      { compiler: 'gcc', flags: ['-m32'], machine: 'i386', bits: 32, endian: 'little' },
      { compiler: 'powerpc64le-linux-gnu-gcc', flags: ['-mbig-endian'], machine: 'ppc64', bits: 64, endian: 'big' },
      { compiler: 'aarch64-linux-gnu-gcc', flags: ['-mbig-endian'], machine: 'aarch64_be', bits: 64, endian: 'big' },
    ];
    for (const c of cases) {
      const common = [...c.flags, '-fPIC', '-shared', '-nostdlib'];
      const stub = cachedBuild({ name: 'libstub.so', compiler: c.compiler, args: [...common, '-Wl,-soname,libstub.so'], sources: [join(src, 'stub.c')] });
      const lib = cachedBuild({
        name: 'libext.so',
        compiler: c.compiler,
        args: [...common, '-Wl,-soname,libext.so.1', '-Wl,-rpath,/opt/r'],
        sources: [join(src, 'ext.c')],
        after: [stub],
      });
      const info = readElf(readFileSync(lib), lib);
      expect(info).toMatchObject({ machine: c.machine, bits: c.bits, endian: c.endian, soname: 'libext.so.1', kind: 'library', editable: false });
      expect(info.needed).toEqual(readelfNeeded(lib));
      expect(info.needed).toHaveLength(1);
      expect(info.importedSymbols).toContain('ext');
      expect(info.rpath ?? info.runpath).toBe('/opt/r');
      expect(info.refusal).toMatch(/only x86_64, aarch64 and ppc64le files can be edited/);
      expect(() => addNeeded(readFileSync(lib), 'libx.so', { file: lib })).toThrow(/can be edited/);
    }
  });

  it('finds the dynamic table through PT_DYNAMIC when section headers are gone', () => {
    const exe = build('hello', 'x86_64', [], 'hello.c');
    const data = Uint8Array.from(readFileSync(exe));
    // e_shoff = 0, e_shnum = 0, e_shstrndx = 0: what sstrip leaves.
    data.fill(0, 40, 48);
    data.fill(0, 60, 64);
    expect(readElf(data).needed).toEqual(readelfNeeded(exe));
    // DT_GNU_HASH alone does not count undefined symbols; the imports still come out complete.
    expect(readElf(data).importedSymbols).toEqual(readElf(readFileSync(exe)).importedSymbols);
    expect(readElf(data).importedSymbols).toEqual(expect.arrayContaining(['printf', 'sqrt']));
  });
});

describe.skipIf(skip)('elf engine: adding and removing', () => {
  it('tier B: .dynstr into padding, nothing added (x86_64, aarch64, ppc64le)', () => {
    for (const arch of Object.keys(CROSS) as Arch[]) {
      const r = roundTrip(arch, build('hello', arch, [], 'hello.c'), { tier: /^B$/ });
      expect(r.added).toBe(0);
    }
  });

  it('tier B in non-PIE executables and shared libraries', () => {
    roundTrip('x86_64', build('hello-nopie', 'x86_64', ['-no-pie'], 'hello.c'), { tier: /^B$/ });
    roundTrip('ppc64le', build('hello-nopie', 'ppc64le', ['-no-pie'], 'hello.c'), { tier: /^B$/ });
    roundTrip('x86_64', build('libengine.so', 'x86_64', ['-shared', '-fPIC'], 'lib.c', []), { tier: /^B$/ });
  });

  it('--first puts the entry before every other DT_NEEDED and still restores exactly', () => {
    roundTrip('x86_64', build('hello', 'x86_64', [], 'hello.c'), { first: true });
    roundTrip('aarch64', build('hello', 'aarch64', [], 'hello.c'), { first: true });
  });

  it('tier B at the end of the writable segment when no padding is big enough', () => {
    const r = roundTrip('x86_64', build('libmany.so', 'x86_64', ['-shared', '-fPIC'], 'many.c', []), { tier: /^B$/ });
    expect(r.added).toBeGreaterThan(0);
  });

  it('tier C: no spare slot (--spare-dynamic-tags=0, lld)', () => {
    roundTrip('x86_64', build('hello-nospare', 'x86_64', ['-Wl,--spare-dynamic-tags=0'], 'hello.c'), { tier: /^C$/ });
    roundTrip('x86_64', build('hello-lld', 'x86_64', ['-fuse-ld=lld'], 'hello.c'), { tier: /^C/ });
    roundTrip('aarch64', build('hello-nospare', 'aarch64', ['-Wl,--spare-dynamic-tags=0'], 'hello.c'), { tier: /^C/ });
    roundTrip('ppc64le', build('hello-nospare', 'ppc64le', ['-Wl,--spare-dynamic-tags=0'], 'hello.c'), { tier: /^C/ });
  });

  it('tier D: a new PT_LOAD with the program-header table moved (libraries with a large .bss)', () => {
    for (const arch of Object.keys(CROSS) as Arch[]) {
      const r = roundTrip(arch, build('libbig.so', arch, ['-shared', '-fPIC'], 'big.c', []), { tier: /^D$/ });
      expect(r.detail).toContain('table moved');
      expect(r.added).toBeLessThan(200 * 1024);
    }
    roundTrip('x86_64', build('libbig-nospare.so', 'x86_64', ['-shared', '-fPIC', '-Wl,--spare-dynamic-tags=0'], 'big.c', []), { tier: /^D$/ });
  });

  it('tier D for executables: the table moves into padding at the image base (AT_PHDR), no .bss written', () => {
    for (const arch of Object.keys(CROSS) as Arch[]) {
      const r = roundTrip(arch, build('big', arch, ['-rdynamic'], 'big.c', []), { tier: /^D$/ });
      expect(r.detail).toContain('padding at the image base');
      expect(r.added).toBeLessThan(128 * 1024); // the 1 MiB .bss is not written out
    }
    roundTrip('x86_64', build('big-nopie', 'x86_64', ['-no-pie', '-rdynamic'], 'big.c', []), { tier: /^D$/ });
    const c = roundTrip('x86_64', build('big-nospare', 'x86_64', ['-rdynamic', '-Wl,--spare-dynamic-tags=0'], 'big.c', []), { tier: /^D$/ });
    expect(c.detail).toContain('.dynamic into a new segment');
  });

  it('tier D for lld executables with a large .bss: one page opened at the image base', () => {
    for (const flags of [[], ['-no-pie']]) {
      const r = roundTrip('x86_64', build('lldbig', 'x86_64', ['-fuse-ld=lld', ...flags], 'lldbig.c', []), { tier: /^D$/ });
      expect(r.detail).toContain('page opened at the image base');
      expect(r.added).toBeLessThan(8192);
    }
  });

  it('tier D: a PT_NULL program header after the last PT_LOAD becomes the new segment', () => {
    const big = readFileSync(build('big', 'x86_64', ['-rdynamic'], 'big.c', []));
    const data = Uint8Array.from(big);
    const dv = new DataView(data.buffer);
    const phoff = Number(dv.getBigUint64(32, true));
    const phnum = dv.getUint16(56, true);
    let nulled = false;
    for (let i = 0; i < phnum; i++) {
      if (dv.getUint32(phoff + i * 56, true) === 0x6474e550) {
        dv.setUint32(phoff + i * 56, 0, true); // PT_GNU_EH_FRAME -> PT_NULL (C needs no unwinding tables)
        nulled = true;
      }
    }
    expect(nulled).toBe(true);
    const input = join(tmp.dir, 'big-ptnull');
    writeFileSync(input, data, { mode: 0o755 });
    const r = roundTrip('x86_64', input, { tier: /D$/ });
    expect(r.detail).toContain('from a PT_NULL slot');
    // The program-header table stayed where it was: no padding to the image base was needed.
    expect(r.added).toBeLessThan(128 * 1024);
  });

  it('tier A: a spare slot and an existing string (a symbol name tail) change only the slot', () => {
    for (const arch of ['x86_64', 'aarch64'] as Arch[]) {
      const exe = build('alias', arch, ['-rdynamic'], 'alias.c', []);
      const orig = readFileSync(exe);
      const r = addNeeded(orig, 'libmarker.so', { file: exe });
      expect(r.tier).toBe('A');
      expect(r.bytesAdded).toBe(0);
      expect(r.bytesChanged).toBeLessThanOrEqual(16);
      const copy = join(tmp.dir, `alias-${arch}`);
      writeFileSync(copy, r.data, { mode: 0o755 });
      expect(run(arch, copy).out).toMatch(/MARKER loaded\nalias 1/);
      expect(elflint(copy)).toEqual(elflint(exe));
      // No record: removal deletes the entry in place, which is the exact inverse.
      const back = removeNeeded(r.data, 'libmarker.so');
      expect(Buffer.compare(Buffer.from(back.data), orig)).toBe(0);
      // --first shifts the other entries down; removal shifts them back.
      const first = addNeeded(orig, 'libmarker.so', { first: true });
      expect(first.tier).toBe('A');
      expect(readElf(first.data).needed[0]).toBe('libmarker.so');
      expect(Buffer.compare(Buffer.from(removeNeeded(first.data, 'libmarker.so').data), orig)).toBe(0);
    }
  });

  it('never modifies the buffers it is given', () => {
    const exe = readFileSync(build('hello', 'x86_64', [], 'hello.c'));
    const snapshot = Buffer.from(exe);
    const added = addNeeded(exe, 'libmarker.so');
    expect(exe.equals(snapshot)).toBe(true);
    const edited = Buffer.from(added.data);
    const input = Buffer.from(added.data); // a Buffer, as readFileSync returns: its slice() is a view
    const removed = removeNeeded(input, 'libmarker.so');
    expect(input.equals(edited)).toBe(true);
    expect(Buffer.from(removed.data).equals(snapshot)).toBe(true);
    const first = addNeeded(exe, 'libmarker.so', { first: true });
    removeNeeded(addNeeded(first.data, 'libother.so').data, 'libmarker.so');
    expect(exe.equals(snapshot)).toBe(true);
  });

  it('an entry that is already there changes nothing', () => {
    const exe = build('hello', 'x86_64', [], 'hello.c');
    const data = readFileSync(exe);
    const r = addNeeded(data, 'libc.so.6', { file: exe });
    expect(r.changed).toBe(false);
    expect(r.data).toBe(data);
    expect(r.message).toBe(`libc.so.6 is already needed by ${exe}; nothing changed`);
    expect(removeNeeded(data, 'libnope.so', { file: exe }).changed).toBe(false);
  });

  it('removes a foreign entry in place, and refuses one that symbol versions depend on', () => {
    const exe = build('hello-unused', 'x86_64', ['-Wl,--no-as-needed'], 'lib.c', ['-shared', '-fPIC', '-lz']);
    const info = readElf(readFileSync(exe));
    expect(info.needed).toContain('libz.so.1');
    const r = removeNeeded(readFileSync(exe), 'libz.so.1', { file: exe });
    expect(r.tier).toBe('remove');
    expect(readElf(r.data).needed).toEqual(info.needed.filter((n) => n !== 'libz.so.1'));
    const hello = build('hello', 'x86_64', [], 'hello.c');
    expect(() => removeNeeded(readFileSync(hello), 'libc.so.6', { file: hello })).toThrow(/symbol versions/);
  });

  it('falls back to in-place removal when the file changed after our edit', () => {
    const exe = build('hello', 'x86_64', [], 'hello.c');
    const one = addNeeded(readFileSync(exe), 'libmarker.so');
    const two = addNeeded(one.data, 'libother.so');
    const r = removeNeeded(two.data, 'libmarker.so');
    expect(r.tier).toBe('remove');
    expect(r.message).toMatch(/changed since/);
    expect(readElf(r.data).needed).toEqual(['libm.so.6', 'libc.so.6', 'libother.so']);
    // LIFO removal restores every byte.
    const lifo = removeNeeded(removeNeeded(two.data, 'libother.so').data, 'libmarker.so');
    expect(Buffer.compare(Buffer.from(lifo.data), readFileSync(exe))).toBe(0);
  });
});

/** The undo record in an edited image: offset, length and decoded record. */
function recordIn(data: Uint8Array): { off: number; len: number; rec: UndoRecord } {
  const b = Buffer.from(data);
  const off = b.indexOf('MAMBAPATCH-UNDO:');
  const len = b.indexOf(0, off) - off;
  return { off, len, rec: decodeRecord(b.toString('latin1', off, off + len))! };
}

/**
 * The same edit as 0.1.0 wrote it (record MAMBAPATCH-UNDO:2:, same layout; its edited-file hash covers the
 * whole file with the record zeroed).
 */
function asVersion2(edited: Uint8Array): Buffer {
  const out = Buffer.from(edited);
  const { off, len, rec } = recordIn(out);
  out.fill(0, off, off + len);
  const v2: UndoRecord = { ...rec, v: 2, e: createHash('sha256').update(out).digest('hex') };
  out.write(encodeRecord(v2, len)!, off, 'latin1');
  return out;
}

describe.skipIf(skip)('elf engine: undo records', () => {
  it('a file edited by 0.1.0 (record v2) is still removed exactly, in memory and through the file path', () => {
    for (const exe of [build('hello', 'x86_64', [], 'hello.c'), build('libmany.so', 'x86_64', ['-shared', '-fPIC'], 'many.c', [])]) {
      const orig = readFileSync(exe);
      const v2 = asVersion2(addNeeded(orig, 'libmarker.so').data);
      expect(v2.toString('latin1')).toContain('MAMBAPATCH-UNDO:2:');
      const back = removeNeeded(v2, 'libmarker.so');
      expect(back.tier).toBe('undo');
      expect(Buffer.compare(Buffer.from(back.data), orig)).toBe(0);
      const f = join(tmp.dir, `v2-${exe.split('/').pop()}`);
      writeFileSync(f, v2, { mode: 0o755 });
      expect(editElfFile(f, (elf) => prepareRemove(elf, 'libmarker.so', { file: f })).tier).toBe('undo');
      expect(Buffer.compare(readFileSync(f), orig)).toBe(0);
    }
  });

  it('refuses an exact removal when any byte changed since the edit: an original byte or one the edit wrote (v2 and v3)', () => {
    const exe = build('libmany.so', 'x86_64', ['-shared', '-fPIC'], 'many.c', []);
    const orig = readFileSync(exe);
    const v3 = Buffer.from(addNeeded(orig, 'libmarker.so').data);
    const { off } = recordIn(v3);
    // A byte of the copied .dynstr (written by the edit) and the last byte of the file (an original byte).
    const t = readElf(v3);
    expect(t.needed).toContain('libmarker.so');
    const copied = v3.lastIndexOf('an_exported_function_with_a_long_name_7', off);
    for (const [what, data] of [['v3', v3], ['v2', asVersion2(v3)]] as const) {
      for (const at of [copied, data.length - 1]) {
        const changed = Buffer.from(data);
        changed[at] ^= 0x20;
        const r = removeNeeded(changed, 'libmarker.so');
        expect(r.tier, `${what}: byte ${at} changed`).toBe('remove');
        expect(r.message).toMatch(/changed since/);
        const f = join(tmp.dir, `changed-${what}-${at}`);
        writeFileSync(f, changed, { mode: 0o755 });
        expect(editElfFile(f, (elf) => prepareRemove(elf, 'libmarker.so', { file: f })).tier).toBe('remove');
        expect(readElf(readFileSync(f)).needed).not.toContain('libmarker.so');
      }
      expect(Buffer.compare(Buffer.from(removeNeeded(data, 'libmarker.so').data), orig)).toBe(0);
    }
  });
});

describe.skipIf(skip)('elf engine: refusals', () => {
  const refuses = (data: Uint8Array, re: RegExp): void => {
    let err: unknown;
    try {
      addNeeded(data, 'libmarker.so', { file: 'F' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MambapatchError);
    expect((err as Error).message).toMatch(/^F: /);
    expect((err as Error).message).toMatch(re);
    expect((err as Error).message).not.toContain('\n');
  };

  it('refuses non-ELF, truncated, static, relocatable, loader, static-pie, debuginfo and foreign-arch files', () => {
    const exe = build('hello', 'x86_64', [], 'hello.c');
    const data = readFileSync(exe);
    refuses(Buffer.from('#!/bin/sh\necho hi\n'), /not an ELF file/);
    refuses(data.subarray(0, 40), /runs past the end|offset/);
    refuses(data.subarray(0, 3000), /runs past the end/);
    refuses(readFileSync(build('hello-static', 'x86_64', ['-static'], 'hello.c')), /statically linked/);
    refuses(readFileSync(build('hello-static-pie', 'x86_64', ['-static-pie'], 'hello.c')), /static-pie/);
    refuses(readFileSync(build('hello.o', 'x86_64', ['-c'], 'hello.c', [])), /relocatable/);
    refuses(readFileSync('/lib64/ld-linux-x86-64.so.2'), /dynamic loader/);
    const dbg = join(tmp.dir, 'hello.debug');
    execFileSync('objcopy', ['--only-keep-debug', exe, dbg]);
    refuses(readFileSync(dbg), /debug/);
    const mips = Uint8Array.from(data);
    mips[18] = 8; // e_machine = EM_MIPS
    refuses(mips, /MIPS/);
    const s390 = Uint8Array.from(data);
    s390[18] = 22;
    refuses(s390, /only x86_64, aarch64 and ppc64le/);
  });

  it('leaves the file alone when it refuses, and writes through neither hard links nor modes', () => {
    const exe = build('hello', 'x86_64', [], 'hello.c');
    const copy = join(tmp.dir, 'linked');
    const link = join(tmp.dir, 'linked-2');
    copyFileSync(exe, copy);
    chmodSync(copy, 0o750);
    linkSync(copy, link);
    editElfFile(copy, (elf) => prepareAdd(elf, 'libmarker.so', { file: copy }));
    expect(statSync(copy).mode & 0o777).toBe(0o750);
    expect(Buffer.compare(readFileSync(link), readFileSync(exe))).toBe(0);
    const st = readFileSync(build('hello-static', 'x86_64', ['-static'], 'hello.c'));
    const stCopy = join(tmp.dir, 'static');
    writeFileSync(stCopy, st);
    expect(() => editElfFile(stCopy, (elf) => prepareAdd(elf, 'libmarker.so', { file: stCopy }))).toThrow(MambapatchError);
    expect(Buffer.compare(readFileSync(stCopy), st)).toBe(0);
  });
});
