/**
 * `print-needed` agrees with `readelf -dW` on every ELF file under /usr/lib/x86_64-linux-gnu and /usr/bin,
 * and on the cross sysroots (aarch64, ppc64le, big-endian ppc64, s390x, i386, armhf): the library API
 * in-process for every file (NEEDED, SONAME, RPATH, RUNPATH, class, byte order, architecture), the CLI for a
 * few. readelf runs in batches of many files.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readElf, type ElfInfo } from '../../src/elf/index.js';
import { inCI, missing } from '../helpers/env.js';
import { elfFilesUnder, parseReadelf, runProcess, type ReadelfView } from './fixtures.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const ROOTS = ['/usr/lib/x86_64-linux-gnu', '/usr/bin'];
const BATCH = 150;

const run = promisify(execFile);
async function readelfBatch(files: string[], args = ['-dW']): Promise<Map<string, ReadelfView>> {
  // readelf exits non-zero when it warns about one file of the batch; its stdout is still complete.
  const r = await run('readelf', [...args, ...files], { maxBuffer: 256 << 20, encoding: 'utf8' }).catch(
    (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
  );
  return parseReadelf(r.stdout, files.length === 1 ? files[0] : undefined);
}

/** readelf's Machine and Data lines → our architecture name (undefined: not one we name). */
function archOf(v: ReadelfView): string | undefined {
  const little = v.data?.includes('little');
  switch (v.machine) {
    case 'Advanced Micro Devices X86-64':
      return 'x86_64';
    case 'AArch64':
      return 'aarch64';
    case 'PowerPC64':
      return little ? 'ppc64le' : 'ppc64';
    case 'IBM S/390':
      return v.class === 'ELF64' ? 's390x' : undefined;
    case 'Intel 80386':
      return 'i386';
    case 'ARM':
      return 'arm';
    default:
      return undefined;
  }
}

/**
 * Compares readElf with `readelf -hdW` on every file: NEEDED (in order), SONAME, RPATH, RUNPATH, and the
 * class, byte order and architecture. Returns the mismatches (empty when all agree).
 */
async function compareWithReadelf(files: string[]): Promise<{ mismatches: string[]; withNeeded: number; arches: Record<string, number> }> {
  const batches: string[][] = [];
  for (let i = 0; i < files.length; i += BATCH) batches.push(files.slice(i, i + BATCH));
  const expected = new Map<string, ReadelfView>();
  // Two readelf processes at a time: one per core.
  for (let i = 0; i < batches.length; i += 2) {
    for (const m of await Promise.all(batches.slice(i, i + 2).map((b) => readelfBatch(b, ['-hdW'])))) for (const [k, v] of m) expected.set(k, v);
  }
  const mismatches: string[] = [];
  const arches: Record<string, number> = {};
  let withNeeded = 0;
  for (const f of files) {
    const want = expected.get(f);
    if (!want) {
      mismatches.push(`${f}: readelf printed no section for it`);
      continue;
    }
    if (want.needed.length > 0) withNeeded++;
    let info: ElfInfo;
    try {
      info = readElf(readFileSync(f), f);
    } catch (e) {
      mismatches.push(`${f}: readElf threw ${(e as Error).name}: ${(e as Error).message}`);
      continue;
    }
    const arch = archOf(want);
    if (arch) arches[arch] = (arches[arch] ?? 0) + 1;
    const ours = {
      needed: info.needed,
      soname: info.soname,
      rpath: info.rpath,
      runpath: info.runpath,
      bits: info.bits,
      endian: info.endian,
      ...(arch ? { machine: info.machine } : {}),
    };
    const theirs = {
      needed: want.needed,
      soname: want.soname,
      rpath: want.rpath,
      runpath: want.runpath,
      bits: want.class === 'ELF64' ? 64 : 32,
      endian: want.data?.includes('little') ? 'little' : 'big',
      ...(arch ? { machine: arch } : {}),
    };
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) mismatches.push(`${f}: ours ${JSON.stringify(ours)} readelf ${JSON.stringify(theirs)}`);
  }
  return { mismatches, withNeeded, arches };
}

/** The cross sysroots: real glibc/libstdc++ files for the architectures we read (and edit). */
const SYSROOTS = [
  '/usr/aarch64-linux-gnu',
  '/usr/powerpc64le-linux-gnu',
  '/usr/powerpc64-linux-gnu',
  '/usr/s390x-linux-gnu',
  '/usr/i686-linux-gnu',
  '/usr/arm-linux-gnueabihf',
];

describe.skipIf(missing({ tools: ['readelf'] }))('readElf agrees with readelf -hdW', () => {
  it(`on every ELF file under ${ROOTS.join(' and ')} (library API)`, async () => {
    const files = elfFilesUnder(ROOTS);
    expect(files.length).toBeGreaterThan(100);
    const { mismatches, withNeeded } = await compareWithReadelf(files);
    console.log(`readelf agreement: ${files.length} ELF files (${withNeeded} with DT_NEEDED), ${mismatches.length} mismatches`);
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(withNeeded).toBeGreaterThan(100);
  });

  it('on every ELF file of the cross sysroots (aarch64, ppc64le, big-endian ppc64, s390x, i386, armhf)', async () => {
    const roots = SYSROOTS.filter((r) => existsSync(r));
    if (roots.length < SYSROOTS.length) {
      const why = `missing sysroots ${SYSROOTS.filter((r) => !roots.includes(r)).join(' ')} (apt: libc6-{s390x,ppc64,i386,armhf}-cross)`;
      if (inCI) throw new Error(why);
      console.warn(`partly skipped: ${why}`);
    }
    const files = elfFilesUnder(roots);
    const { mismatches, arches } = await compareWithReadelf(files);
    console.log(`readelf agreement (sysroots): ${files.length} ELF files ${JSON.stringify(arches)}, ${mismatches.length} mismatches`);
    expect(mismatches.slice(0, 20)).toEqual([]);
    for (const r of roots) expect(files.filter((f) => f.startsWith(r + '/')).length, r).toBeGreaterThan(5);
  });

  it('on a few files through the CLI (exit 0, one name a line, nothing on stderr)', async () => {
    const picks = ['/usr/bin/ls', realpathSync('/usr/lib/x86_64-linux-gnu/libc.so.6'), realpathSync('/lib64/ld-linux-x86-64.so.2')];
    for (const r of SYSROOTS) if (existsSync(`${r}/lib/libm.so.6`)) picks.push(realpathSync(`${r}/lib/libm.so.6`));
    for (const f of picks) {
      const r = await runProcess(process.execPath, [CLI, 'elf', 'print-needed', f]);
      expect({ f, status: r.status, stderr: r.stderr }).toEqual({ f, status: 0, stderr: '' });
      const want = (await readelfBatch([f])).get(f)!.needed;
      expect(r.stdout).toBe(want.map((n) => n + '\n').join(''));
    }
  });
});
