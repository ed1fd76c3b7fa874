/**
 * relocationReach (where a new segment may start: above every dynamic relocation's r_offset + st_size)
 * against binutils: the same maximum computed from `readelf -rW` and `readelf --dyn-syms -W` of real
 * corpus files (one with a 4 MB-style object reached through a GLOB_DAT) and distribution libraries.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { relocationReach } from '../../src/elf/dynamic.js';
import { parseElf } from '../../src/elf/parse.js';
import { missing } from '../helpers/env.js';
import { corpus, systemLibraries } from './fixtures.js';

const MAX_OBJECT = 1 << 28;

/** The reach as binutils sees it: symbol sizes from --dyn-syms, r_offset and symbol index from -r. */
function readelfReach(file: string): number {
  const sizes = new Map<number, number>();
  for (const line of execFileSync('readelf', ['--dyn-syms', '-W', file], { encoding: 'utf8' }).split('\n')) {
    const m = /^\s*(\d+):\s+[0-9a-f]+\s+(0x[0-9a-f]+|\d+)\s/.exec(line);
    if (m) sizes.set(Number(m[1]), Number(m[2]));
  }
  let reach = 0;
  for (const line of execFileSync('readelf', ['-rW', file], { encoding: 'utf8' }).split('\n')) {
    const m = /^([0-9a-f]{16})\s+([0-9a-f]{16})\s/.exec(line);
    if (!m) continue;
    const sym = Number(BigInt(`0x${m[2]}`) >> 32n);
    const size = sizes.get(sym) ?? 0;
    if (sym !== 0 && size > 0 && size <= MAX_OBJECT) reach = Math.max(reach, Number(BigInt(`0x${m[1]}`)) + size);
  }
  return reach;
}

describe.skipIf(missing({ tools: ['gcc', 'readelf'] }))('relocationReach', () => {
  it('matches readelf on corpus files and distribution libraries', () => {
    const wanted = ['x86_64-c-lib-bigreloc', 'x86_64-c-lib-manysyms', 'x86_64-cxx-lib-default', 'x86_64-c-pie-default', 'x86_64-c-exec-default'];
    const files = [...corpus().filter((f) => wanted.includes(f.id)), ...systemLibraries().filter((f) => f.arch === 'x86_64')];
    expect(files.length).toBeGreaterThanOrEqual(wanted.length + 1);
    const seen: Record<string, [number, number]> = {};
    for (const f of files) seen[f.id] = [relocationReach(parseElf(new Uint8Array(readFileSync(f.path)), f.path)), readelfReach(f.path)];
    for (const [id, [ours, theirs]] of Object.entries(seen)) expect(ours, id).toBe(theirs);
    // The big-object case really reaches past its GOT slot (the elflint finding this rule fixes).
    const [bigreloc] = seen['x86_64-c-lib-bigreloc']!;
    expect(bigreloc).toBeGreaterThan(0);
  });
});
