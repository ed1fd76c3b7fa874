/**
 * The engine on real-world layouts: add-needed (in-process) on every ELF file under /usr/lib/x86_64-linux-gnu
 * and /usr/bin ends in a clean refusal or in an edit that verifies, reads back with the marker in place and
 * reverts byte for byte; and a few coreutils, edited with --first, still run and load the marker.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addNeeded, readElf, removeNeeded, verifyEdit } from '../../src/elf/index.js';
import { MambapatchError } from '../../src/errors.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { MARKER_LINE, MARKER_NAME, elfFilesUnder, markerLib, runProcess } from './fixtures.js';

const ROOTS = ['/usr/lib/x86_64-linux-gnu', '/usr/bin'];

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => {
  tmp = worldTmp('elf-system');
});
afterAll(() => tmp?.cleanup());

describe('elf add-needed on the system files', () => {
  it(`every ELF file under ${ROOTS.join(' and ')} is refused cleanly or edited, verified and reverted exactly`, () => {
    const files = elfFilesUnder(ROOTS);
    const bad: string[] = [];
    const tiers: Record<string, number> = {};
    const refusals: Record<string, number> = {};
    for (const f of files) {
      const data = readFileSync(f);
      try {
        const before = readElf(data, f).needed;
        const r = addNeeded(data, MARKER_NAME, { file: f });
        if (!r.changed) {
          if (!before.includes(MARKER_NAME)) bad.push(`${f}: unchanged`);
          continue;
        }
        verifyEdit(data, r.data, f);
        const after = readElf(r.data, f).needed;
        if (JSON.stringify(after) !== JSON.stringify([...before, MARKER_NAME])) bad.push(`${f}: needed ${JSON.stringify(after)}`);
        if (!Buffer.from(removeNeeded(r.data, MARKER_NAME, { file: f }).data).equals(data)) bad.push(`${f}: revert is not exact`);
        tiers[r.tier ?? '?'] = (tiers[r.tier ?? '?'] ?? 0) + 1;
      } catch (e) {
        if (!(e instanceof MambapatchError) || (e.cause instanceof Error && !(e.cause instanceof MambapatchError))) {
          bad.push(`${f}: ${(e as Error).name}: ${(e as Error).message} ${e instanceof MambapatchError ? `(wrapping ${String(e.cause)})` : ''}`);
          continue;
        }
        // Group refusals by reason (the part after the file name, without numbers).
        const why = e.message.slice(f.length + 2).replace(/\d+/g, 'N');
        refusals[why] = (refusals[why] ?? 0) + 1;
      }
    }
    const edited = Object.values(tiers).reduce((a, b) => a + b, 0);
    console.log(`system files: ${files.length}, edited ${edited} ${JSON.stringify(tiers)}, refused ${JSON.stringify(refusals)}`);
    expect(bad.slice(0, 20)).toEqual([]);
    expect(edited).toBeGreaterThan(files.length * 0.9);
  }, 300_000);

  it.skipIf(missing({ tools: ['gcc'] }))('edited coreutils (--first) still run and load the marker', async () => {
    const libDir = join(markerLib('x86_64'), '..');
    for (const tool of ['ls', 'cat', 'sort', 'env', 'date', 'sha256sum']) {
      const path = `/usr/bin/${tool}`;
      const out = join(tmp.dir, tool);
      writeFileSync(out, addNeeded(readFileSync(path), MARKER_NAME, { first: true, file: path }).data, { mode: 0o755 });
      const want = await runProcess(path, ['--version'], { ...process.env, LC_ALL: 'C' });
      const got = await runProcess(out, ['--version'], { ...process.env, LC_ALL: 'C', LD_LIBRARY_PATH: libDir });
      expect({ tool, status: got.status, stdout: got.stdout, stderr: got.stderr }).toEqual({ tool, status: 0, stdout: `${MARKER_LINE}\n${want.stdout}`, stderr: '' });
    }
  });
});
