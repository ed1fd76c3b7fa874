/**
 * Building the supervisor blob (templates/supervisor) for one architecture: compile freestanding, link
 * as a shared object twice at different addresses with the blob's linker script (which fails on writable
 * data, TOC entries, dynamic relocations, PLT entries, linker stubs and unknown sections), require the two
 * images to be byte-identical (nothing depends on the load address), take the one output section `.hook`
 * as a flat image and write its size into the header. Rebuilt only when the source, the rule header, the linker script, the version, the compiler or
 * the flags change. Used by `scripts/build-shims.mjs` and by `hookBlob` (on demand).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseElf } from '../elf/parse.js';
import { TEMPLATES_DIR, VERSION } from '../package.js';
import { rulesHeader, type ShimArch } from '../shim/build.js';
import { HOOK_HEADER_SIZE, HOOK_SIZE_OFFSET, parseHookHeader } from '../elf/hook-header.js';

export const HOOK_FILENAME = 'mambapatch-hook.bin';

export const hookSource = (): string => path.join(TEMPLATES_DIR, 'supervisor', 'mambapatch_hook.c');
export const hookLinkerScript = (): string => path.join(TEMPLATES_DIR, 'supervisor', 'mambapatch_hook.ld');

/** Freestanding, position-independent, no stack protector, no unwind tables, no libc calls. */
export const HOOK_CFLAGS = [
  '-ffreestanding', '-nostdlib', '-fno-builtin', '-O2', '-std=gnu11', '-Wall', '-Wextra',
  '-fPIC', '-fno-plt', '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-fno-unwind-tables',
  '-fno-jump-tables', '-fno-tree-loop-distribute-patterns',
];

/** Per architecture: general registers only (the FP/vector state is never touched), and PC-relative
 * addressing that works at any 16-byte aligned address (aarch64's tiny model: adr, no adrp). */
export const HOOK_ARCH_CFLAGS: Record<ShimArch, string[]> = {
  x86_64: ['-mgeneral-regs-only', '-fcf-protection=none'],
  aarch64: ['-mgeneral-regs-only', '-mcmodel=tiny', '-mbranch-protection=none'],
  ppc64le: ['-msoft-float', '-mno-altivec', '-mno-vsx'],
};

const LDFLAGS = [
  '-nostdlib', '-nostartfiles', '-shared', '-Wl,--build-id=none', '-Wl,--orphan-handling=error', '-Wl,-z,noexecstack',
  '-Wl,--hash-style=gnu', '-Wl,--no-warn-rwx-segments',
];

/** The two addresses the blob is linked at to prove it does not depend on where it is loaded: 16-byte
 * aligned, not page aligned (an adrp would show). ppc64's linker aligns .TOC. to 256 bytes below the
 * section, so its second base is 256-aligned (TOC-relative code is PC-relative through r2). */
const BASES = ['0x0', '0x12340'];
const basesFor = (arch: ShimArch): string[] => (arch === 'ppc64le' ? ['0x0', '0x12300'] : BASES);

function stampOf(arch: ShimArch, compiler: string, version: string): string {
  const h = createHash('sha256');
  h.update([path.basename(compiler), version, ...HOOK_CFLAGS, ...HOOK_ARCH_CFLAGS[arch], ...LDFLAGS, ...basesFor(arch)].join('\0'));
  for (const f of [hookSource(), rulesHeader(), hookLinkerScript()]) h.update(fs.readFileSync(f));
  return h.digest('hex');
}

function run(compiler: string, args: string[], what: string): void {
  try {
    execFileSync(compiler, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    const line = stderr.split('\n').find((l) => /error|undefined reference|mambapatch hook/.test(l)) ?? stderr.split('\n')[0];
    throw new Error(`${path.basename(compiler)} failed to ${what}${line ? `: ${line}` : ''}`);
  }
}

/** The bytes of `.hook`; throws if anything but it and the linker's metadata would be loaded. */
function flatImage(elfFile: string, arch: ShimArch): Uint8Array {
  const elf = parseElf(new Uint8Array(fs.readFileSync(elfFile)), elfFile);
  const SHF_ALLOC = 2;
  const loaded = elf.shdrs.filter((s) => (s.flags & SHF_ALLOC) !== 0 && s.size > 0);
  const hook = loaded.find((s) => s.name === '.hook');
  const other = loaded.filter((s) => s.name !== '.hook' && s.name !== '.metadata');
  if (!hook || other.length > 0)
    throw new Error(`the ${arch} hook must be one section .hook; found ${loaded.map((s) => s.name).join(', ') || 'none'}`);
  return elf.view.bytes(hook.offset, hook.size);
}

/**
 * Compiles the blob for `arch` into `output`, unless the same build is there. Returns true when it
 * compiled. Throws the compiler's or the check's message.
 */
export function buildHook(arch: ShimArch, output: string, compiler: string, version = VERSION): boolean {
  const stamp = stampOf(arch, compiler, version);
  const stampFile = `${output}.stamp`;
  if (fs.existsSync(output) && fs.existsSync(stampFile) && fs.readFileSync(stampFile, 'utf8').trim() === stamp) return false;
  const work = fs.mkdtempSync(path.join(os.tmpdir(), `mambapatch-hook-${arch}-`));
  try {
    const obj = path.join(work, 'hook.o');
    run(compiler, [...HOOK_CFLAGS, ...HOOK_ARCH_CFLAGS[arch], `-DMAMBAPATCH_VERSION="${version}"`, '-c', hookSource(), '-o', obj], `compile the ${arch} hook`);
    const images = basesFor(arch).map((base, i) => {
      const elf = path.join(work, `hook${i}.elf`);
      run(compiler, [...LDFLAGS, `-Wl,-T,${hookLinkerScript()}`, `-Wl,--section-start=.hook=${base}`, obj, '-o', elf], `link the ${arch} hook`);
      return flatImage(elf, arch);
    });
    const [a, b] = images as [Uint8Array, Uint8Array];
    if (a.length !== b.length || a.some((v, i) => v !== b[i]))
      throw new Error(`the ${arch} hook depends on its load address (an absolute address or relocation in the code)`);
    if (a.length < HOOK_HEADER_SIZE) throw new Error(`the ${arch} hook is shorter than its header`);
    const image = new Uint8Array(a);
    new DataView(image.buffer).setUint32(HOOK_SIZE_OFFSET, image.length, true);
    const header = parseHookHeader(image, true);
    if (!header || header.arch !== arch || header.version !== version || header.entryOffset >= image.length)
      throw new Error(`the ${arch} hook's header does not read back`);
    fs.mkdirSync(path.dirname(output), { recursive: true });
    const tmp = `${output}.tmp${process.pid}`;
    fs.writeFileSync(tmp, image, { mode: 0o644 });
    fs.renameSync(tmp, output);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
  fs.writeFileSync(stampFile, stamp + '\n');
  return true;
}
