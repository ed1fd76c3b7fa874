/**
 * Memory does not grow with the file: on a generated 192 MiB executable, `elf print-needed`, `info`,
 * `add-needed` and `remove-needed` (through the CLI, in a child process) peak within a fixed margin of the
 * same command on a 16 KiB file and under 64 MiB, far below the file's size; and the edit still
 * round-trips exactly.
 * Peak RSS comes from GNU time (`%M`); no timing is asserted (speed lives in `npm run bench elf`).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { TIME, cliPeak } from '../helpers/peak.js';
import { worldTmp } from '../helpers/tmp.js';
import { MARKER_NAME, bigExecutable, corpus } from './fixtures.js';

/** What the same command may use on the big file beyond the small one: buffers, caches, tables. */
const MARGIN_KIB = 16 * 1024;
/** The limit the engine promises for every command on any file (issue 9; `npm run bench elf` checks libLLVM). */
const LIMIT_KIB = 64 * 1024;

const skip = missing({ tools: ['gcc', TIME] });

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => {
  tmp = worldTmp('elf-scale');
});
afterAll(() => tmp?.cleanup());

const peak = (...args: string[]) => cliPeak(['elf', ...args, '--quiet']);

describe.skipIf(skip)('elf engine at scale', () => {
  it('peak memory of inspection and edits does not grow with the file size', () => {
    const big = bigExecutable(192);
    const small = corpus().find((f) => f.id === 'x86_64-c-exec-default')!.path;
    expect(statSync(big).size).toBeGreaterThan(192 << 20);
    const measure = (file: string, tag: string): Record<string, number> => {
      const out = join(tmp.dir, `${tag}.added`);
      const back = join(tmp.dir, `${tag}.back`);
      const runs = {
        'print-needed': peak('print-needed', file),
        info: peak('info', file),
        'add-needed': peak('add-needed', file, MARKER_NAME, '--output', out),
        'remove-needed': peak('remove-needed', out, MARKER_NAME, '--output', back),
      };
      for (const [what, r] of Object.entries(runs)) expect({ what, status: r.status }, r.stderr).toEqual({ what, status: 0 });
      expect(readFileSync(back).equals(readFileSync(file)), `${tag}: remove-needed restores the original`).toBe(true);
      return Object.fromEntries(Object.entries(runs).map(([k, r]) => [k, r.kib]));
    };
    const base = measure(small, 'small');
    const large = measure(big, 'big');
    for (const what of Object.keys(base)) {
      expect(large[what]! - base[what]!, `${what}: ${large[what]} KiB on 192 MiB vs ${base[what]} KiB on 16 KiB`).toBeLessThan(MARGIN_KIB);
      expect(large[what]!, `${what}: ${large[what]} KiB on 192 MiB`).toBeLessThan(LIMIT_KIB);
    }
  });
});
