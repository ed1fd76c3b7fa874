/**
 * `elf add-entry-hook` / `remove-entry-hook` with a test blob (test/fixtures/elf/hook-noop.S: prints
 * "HOOKED" and jumps on): static, static-pie and dynamic executables of each architecture are hooked through
 * the CLI, run by the kernel (qemu-user for foreign architectures) and must print HOOKED followed by exactly
 * the original output and exit status; removal gives back the original bytes.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedBuild } from '../helpers/build.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { ARCHES, SRC, elflintLines, relocatableObject, runProcess, type Arch } from './fixtures.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'elf', ...args], { encoding: 'utf8' });

type HookArch = Exclude<Arch, 'x86_64-musl'>;
const OBJCOPY: Record<HookArch, string> = { x86_64: 'objcopy', aarch64: 'aarch64-linux-gnu-objcopy', ppc64le: 'powerpc64le-linux-gnu-objcopy' };

let tmp: { dir: string; cleanup: () => void };
const blobs = new Map<HookArch, string>();

/** The test blob for one architecture, as a flat binary. */
function blob(arch: HookArch): string {
  let b = blobs.get(arch);
  if (!b) {
    const obj = cachedBuild({ name: `hook-noop-${arch}.o`, compiler: ARCHES[arch].cc, args: ['-c', `-DARCH="${arch}"`], sources: [join(SRC, 'hook-noop.S')] });
    b = join(tmp.dir, `hook-noop-${arch}.bin`);
    execFileSync(OBJCOPY[arch], ['-O', 'binary', '-j', '.text', obj, b]);
    blobs.set(arch, b);
  }
  return b;
}

interface Target {
  id: string;
  arch: HookArch;
  args: string[];
}
const TARGETS: Target[] = [
  { id: 'static', arch: 'x86_64', args: ['-static'] },
  { id: 'static-pie', arch: 'x86_64', args: ['-static-pie'] },
  { id: 'static-noseparate', arch: 'x86_64', args: ['-static', '-Wl,-z,noseparate-code'] },
  { id: 'static-maxpage64k', arch: 'x86_64', args: ['-static', '-Wl,-z,max-page-size=65536'] },
  { id: 'pie', arch: 'x86_64', args: ['-fPIE', '-pie'] },
  { id: 'exec', arch: 'x86_64', args: ['-fno-pie', '-no-pie'] },
  // lld: no padding between segments (a page is opened at the image base) and a PT_TLS of .tbss only.
  { id: 'pie-lld-tbss', arch: 'x86_64', args: ['-fPIE', '-pie', '-fuse-ld=lld', '-DTLS_BSS'] },
  { id: 'static', arch: 'aarch64', args: ['-static'] },
  { id: 'static-pie', arch: 'aarch64', args: ['-static-pie'] },
  { id: 'pie', arch: 'aarch64', args: ['-fPIE', '-pie'] },
  { id: 'static', arch: 'ppc64le', args: ['-static'] },
  { id: 'pie', arch: 'ppc64le', args: ['-fPIE', '-pie'] },
];

function build(t: Target): string {
  return cachedBuild({ name: `hook-target-${t.arch}-${t.id}`, compiler: ARCHES[t.arch].cc, args: ['-O1', ...t.args], sources: [join(SRC, 'hook-target.c')] });
}

function run(arch: HookArch, file: string) {
  const a = ARCHES[arch];
  const argv = [file, 'one', 'two words'];
  const env = { PATH: '/usr/bin:/bin', HOOK_TEST: 'kept' };
  return a.qemu ? runProcess(a.qemu, ['-L', a.sysroot!, ...argv], env) : runProcess(argv[0]!, argv.slice(1), env);
}

describe.skipIf(missing({ tools: ['gcc', 'ld.lld', 'objcopy', 'eu-elflint', 'aarch64-linux-gnu-gcc', 'powerpc64le-linux-gnu-gcc', 'aarch64-linux-gnu-objcopy', 'powerpc64le-linux-gnu-objcopy', 'qemu-aarch64', 'qemu-ppc64le'] }))(
  'elf add-entry-hook / remove-entry-hook',
  () => {
    beforeAll(() => {
      tmp = worldTmp('entry-hook');
    });
    afterAll(() => tmp?.cleanup());

    it.each(TARGETS.map((t) => [`${t.arch} ${t.id}`, t] as const))('%s: runs the hook first, then exactly the original; removal restores every byte', async (_, t) => {
      const orig = build(t);
      const hooked = join(tmp.dir, `${t.arch}-${t.id}.hooked`);
      const add = cli('add-entry-hook', orig, '--blob', blob(t.arch), '--output', hooked, '--json');
      expect(add.stderr).toBe('');
      expect(add.status).toBe(0);
      const res = JSON.parse(add.stdout);
      expect(res).toMatchObject({ ok: true, changed: true, tier: 'entry-hook', output: hooked });
      // The blob, its undo record, at most one opened page for the program headers, and copies of the
      // section-header table and .shstrtab with the new section.
      expect(res.bytesAdded).toBeLessThanOrEqual(blobSize(t.arch) + 400 + (t.arch === 'x86_64' && t.id !== 'static-maxpage64k' ? 4096 : 65536) + 4096);

      const before = await run(t.arch, orig);
      const after = await run(t.arch, hooked);
      expect(before.status).toBe(7);
      expect(after.status).toBe(7);
      expect(after.stderr).toBe(`HOOKED\n${before.stderr}`);
      expect(after.stdout).toBe(before.stdout.replace(orig, hooked));
      expect(after.stdout).toContain('arg 2: two words\nenv: kept\ntls: 42\nctor: 1\n');

      // The new segment: R+X, last PT_LOAD, holding e_entry; elf info names the hook and the original entry.
      const info = JSON.parse(cli('info', hooked, '--json').stdout);
      const origEntry = JSON.parse(cli('info', orig, '--json').stdout);
      expect(origEntry.entryHook).toBeUndefined();
      expect(info.entryHook).toMatchObject({ id: `mambapatch-hook version=test arch=${t.arch}`, version: 'test', arch: t.arch });
      const loads = execFileSync('readelf', ['-lW', hooked], { encoding: 'utf8' }).split('\n').filter((l) => /^\s+LOAD/.test(l));
      expect(loads.at(-1)).toMatch(/ R E 0x/);
      expect(entryOf(hooked)).toBe(info.entryHook.address + 112);
      expect(info.entryHook.originalEntry).toBe(entryOf(orig));
      // A .mambapatch.hook section covers the new segment's code; eu-elflint finds nothing new.
      const sections = execFileSync('readelf', ['-SW', hooked], { encoding: 'utf8' });
      expect(sections).toMatch(new RegExp(`\\.mambapatch\\.hook\\s+PROGBITS\\s+0*${info.entryHook.address.toString(16)}\\s+\\S+\\s+\\S+\\s+00\\s+AX\\b`));
      const lintBefore = new Set(await elflintLines(orig));
      expect((await elflintLines(hooked)).filter((l) => !lintBefore.has(l))).toEqual([]);

      // Hooking twice changes nothing; removal restores the original bytes.
      const again = cli('add-entry-hook', hooked, '--blob', blob(t.arch));
      expect(again.status).toBe(0);
      expect(again.stdout).toMatch(/already has the entry hook \(mambapatch-hook version=test arch=/);
      const restored = join(tmp.dir, `${t.arch}-${t.id}.restored`);
      const rm = cli('remove-entry-hook', hooked, '--output', restored, '--json');
      expect(rm.status).toBe(0);
      const back = JSON.parse(rm.stdout);
      expect(back).toMatchObject({ ok: true, changed: true, tier: 'undo' });
      expect(readFileSync(restored).equals(readFileSync(orig))).toBe(true);
      // The removal reports the mirror of the edit: the added bytes go, the shifted tail moves back.
      expect(back.bytesAdded + res.bytesAdded).toBe(0);
      expect(back.bytesChanged).toBe(res.bytesChanged);
      expect(back.bytesMoved).toBe(res.bytesMoved);
      expect(back.moved).toEqual(res.moved.map((m: { from: number; to: number; length: number }) => ({ from: m.to, to: m.from, length: m.length })));
    });

    it('in place: keeps mode, owner and hard links of other names; a changed file gets only its entry back', async () => {
      const orig = build(TARGETS[0]!);
      const f = join(tmp.dir, 'inplace');
      copyFileSync(orig, f);
      chmodSync(f, 0o750);
      const other = join(tmp.dir, 'inplace-link');
      linkSync(f, other);
      expect(cli('add-entry-hook', f, '--blob', blob('x86_64')).status).toBe(0);
      expect(statSync(f).mode & 0o7777).toBe(0o750);
      expect(readFileSync(other).equals(readFileSync(orig))).toBe(true);
      expect(statSync(f).nlink).toBe(1);
      // Someone appends to the file: exact removal is impossible, the entry still goes back.
      writeFileSync(f, Buffer.concat([readFileSync(f), Buffer.from('trailing')]));
      const rm = cli('remove-entry-hook', f);
      expect(rm.status).toBe(0);
      expect(rm.stdout).toMatch(/only the entry point was restored/);
      const r = await runProcess(f, []);
      expect(r.status).toBe(7);
      expect(r.stderr).toBe('');
      expect(cli('remove-entry-hook', f).stdout).toMatch(/has no mambapatch entry hook; nothing changed/);
    });

    it('refuses libraries, objects, foreign architectures and entries outside the code; exit 1, one line, nothing written', () => {
      const lib = cachedBuild({ name: 'libhooklib.so', compiler: 'gcc', args: ['-O1', '-fPIC', '-shared', '-Wl,-soname,libhooklib.so'], sources: [join(SRC, 'hook-target.c')] });
      const i386 = cachedBuild({ name: 'hook-target-i386', compiler: 'gcc', args: ['-m32', '-O1', '-static', '-nostdlib', '-Wl,-e,0'], sources: [join(SRC, 'hook-empty.S')] });
      const weird = join(tmp.dir, 'entry-in-data');
      const orig = build(TARGETS[0]!);
      const bytes = Buffer.from(readFileSync(orig));
      // e_entry pointing into .rodata (another tool's hook, or junk): not ours to wrap.
      const rodata = /\.rodata\s+PROGBITS\s+([0-9a-f]+)/.exec(execFileSync('readelf', ['-SW', orig], { encoding: 'utf8' }))![1]!;
      bytes.writeBigUInt64LE(BigInt(`0x${rodata}`), 24);
      writeFileSync(weird, bytes);
      const cases: [string, RegExp][] = [
        [lib, /refusing to hook: the file is a shared library, not an executable$/],
        [relocatableObject(), /refusing to hook: the file has ELF type 1, not an executable$/],
        [i386, /refusing to hook: the file is for i386 \(32-bit\); entry hooks exist for x86_64, aarch64 and ppc64le$/],
        [weird, /refusing to hook: the file has its entry point 0x[0-9a-f]+ outside every executable segment$/],
      ];
      for (const [file, why] of cases) {
        const before = readFileSync(file);
        const r = cli('add-entry-hook', file, '--blob', blob('x86_64'));
        expect(r.status, file).toBe(1);
        expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
        expect(r.stderr.trimEnd()).toMatch(why);
        expect(readFileSync(file).equals(before)).toBe(true);
      }
      const arm = build(TARGETS.find((t) => t.arch === 'aarch64')!);
      const r = cli('add-entry-hook', arm, '--blob', blob('x86_64'), '--output', join(tmp.dir, 'never'));
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/is for aarch64, but the hook blob is for x86_64/);
      expect(existsSync(join(tmp.dir, 'never'))).toBe(false);
    });
  },
);

function entryOf(file: string): number {
  return Number.parseInt(/Entry point address:\s+0x([0-9a-f]+)/.exec(execFileSync('readelf', ['-hW', file], { encoding: 'utf8' }))![1]!, 16);
}

function blobSize(arch: HookArch): number {
  return statSync(blob(arch)).size;
}
