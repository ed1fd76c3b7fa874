/**
 * `print-needed` agrees with `readelf -dW` on every ELF file under /usr/lib/x86_64-linux-gnu and /usr/bin:
 * the library API in-process for every file, the CLI for a few. readelf runs in batches of many files.
 */
import { execFile } from 'node:child_process';
import { closeSync, lstatSync, openSync, readdirSync, readFileSync, readSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/index.js';
import { missing } from '../helpers/env.js';
import { parseReadelfNeeded, runProcess } from './fixtures.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const ROOTS = ['/usr/lib/x86_64-linux-gnu', '/usr/bin'];
const BATCH = 150;

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
function systemElfFiles(): string[] {
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
  for (const r of ROOTS) visit(r);
  return out;
}

const run = promisify(execFile);
async function readelfBatch(files: string[]): Promise<Map<string, string[]>> {
  // readelf exits non-zero when it warns about one file of the batch; its stdout is still complete.
  const r = await run('readelf', ['-dW', ...files], { maxBuffer: 256 << 20, encoding: 'utf8' }).catch(
    (e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }),
  );
  return parseReadelfNeeded(r.stdout, files.length === 1 ? files[0] : undefined);
}

describe.skipIf(missing({ tools: ['readelf'] }))('print-needed agrees with readelf -dW', () => {
  const files = systemElfFiles();

  it(`on every ELF file under ${ROOTS.join(' and ')} (library API)`, async () => {
    expect(files.length).toBeGreaterThan(100);
    const batches: string[][] = [];
    for (let i = 0; i < files.length; i += BATCH) batches.push(files.slice(i, i + BATCH));
    const expected = new Map<string, string[]>();
    // Two readelf processes at a time: one per core.
    for (let i = 0; i < batches.length; i += 2) {
      for (const m of await Promise.all(batches.slice(i, i + 2).map(readelfBatch))) for (const [k, v] of m) expected.set(k, v);
    }
    const mismatches: string[] = [];
    let withNeeded = 0;
    for (const f of files) {
      const want = expected.get(f);
      if (!want) {
        mismatches.push(`${f}: readelf printed no section for it`);
        continue;
      }
      if (want.length > 0) withNeeded++;
      let got: string[];
      try {
        got = readElf(readFileSync(f), f).needed;
      } catch (e) {
        mismatches.push(`${f}: readElf threw ${(e as Error).name}: ${(e as Error).message}`);
        continue;
      }
      if (JSON.stringify(got) !== JSON.stringify(want)) mismatches.push(`${f}: ours ${JSON.stringify(got)} readelf ${JSON.stringify(want)}`);
    }
    console.log(`readelf agreement: ${files.length} ELF files (${withNeeded} with DT_NEEDED), ${mismatches.length} mismatches`);
    expect(mismatches.slice(0, 20)).toEqual([]);
    expect(withNeeded).toBeGreaterThan(100);
  });

  it('on a few files through the CLI (exit 0, one name a line, nothing on stderr)', async () => {
    const picks = ['/usr/bin/ls', realpathSync('/usr/lib/x86_64-linux-gnu/libc.so.6'), realpathSync('/lib64/ld-linux-x86-64.so.2')];
    const cxx = files.find((f) => f.includes('libstdc++.so'));
    if (cxx) picks.push(cxx);
    const noDynamic = files.find((f) => f.endsWith('.o'));
    if (noDynamic) picks.push(noDynamic);
    for (const f of picks) {
      const r = await runProcess(process.execPath, [CLI, 'elf', 'print-needed', f]);
      expect({ f, status: r.status, stderr: r.stderr }).toEqual({ f, status: 0, stderr: '' });
      const want = (await readelfBatch([f])).get(f)!;
      expect(r.stdout).toBe(want.map((n) => n + '\n').join(''));
    }
  });
});
