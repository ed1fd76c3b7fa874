/**
 * The two writers of an edit's output (src/elf/file.ts): editElfFile writes each chunk before the next is
 * made; editElfFileAsync (the `elf` commands) writes on the thread pool with chunks in flight. On files
 * of many chunks they must write the same bytes: an add (new segment, shifted tail, the undo record written
 * last over its zeroed place), its exact removal, and a removal whose record turns out stale only at the
 * end of the file (the output is dropped and rewritten). No temporary file is left behind.
 */
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { editElfFile, editElfFileAsync, prepareAdd, prepareRemove } from '../../src/elf/index.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { MARKER_NAME, bigExecutable, corpus } from './fixtures.js';

let tmp: { dir: string; cleanup: () => void };
beforeAll(() => {
  tmp = worldTmp('elf-write-behind');
});
afterAll(() => tmp?.cleanup());

const add = (f: string) => (elf: Parameters<typeof prepareAdd>[0]) => prepareAdd(elf, MARKER_NAME, { file: f });
const remove = (f: string) => (elf: Parameters<typeof prepareRemove>[0]) => prepareRemove(elf, MARKER_NAME, { file: f });

describe.skipIf(missing({ tools: ['gcc'] }))('writing on the thread pool', () => {
  it('writes the same bytes as the chunk-at-a-time writer: add, exact removal, stale removal', async () => {
    const inputs = [bigExecutable(6), ...corpus().filter((f) => ['x86_64-c-lib-lldbigbss', 'x86_64-c-pie-default'].includes(f.id)).map((f) => f.path)];
    expect(inputs).toHaveLength(3);
    for (const [i, input] of inputs.entries()) {
      const orig = readFileSync(input);
      const sync = join(tmp.dir, `${i}.sync`);
      const async = join(tmp.dir, `${i}.async`);
      const syncReport = editElfFile(input, add(input), { output: sync });
      const asyncReport = await editElfFileAsync(input, add(input), { output: async });
      expect(asyncReport).toEqual(syncReport);
      expect(readFileSync(async).equals(readFileSync(sync)), `${input}: add`).toBe(true);

      // What the report says matches the files: the size, and where the tail an insertion shifted went.
      expect(syncReport.bytesAdded).toBe(readFileSync(sync).length - orig.length);
      expect(syncReport.bytesMoved).toBe(syncReport.moved.reduce((n, m) => n + m.length, 0));
      // Bytes changed in place: original bytes that differ at their place in the output (shifted past an
      // insertion), the undo record included.
      const out = readFileSync(sync);
      const at = syncReport.moved[0]?.from ?? orig.length;
      const shift = syncReport.moved[0] ? syncReport.moved[0].to - at : 0;
      let differ = 0;
      for (let o = 0; o < orig.length; o++) if (orig[o] !== out[o < at ? o : o + shift]) differ++;
      expect(syncReport.bytesChanged, `${input}: bytes changed in place`).toBe(differ);
      // (The moved tail holds the section headers, which the edit updates in place: only its bounds are checked.)
      for (const m of syncReport.moved) expect(m.to + m.length).toBeLessThanOrEqual(readFileSync(sync).length);

      const back = join(tmp.dir, `${i}.back`);
      const undone = await editElfFileAsync(async, remove(async), { output: back });
      expect(undone.tier).toBe('undo');
      expect(readFileSync(back).equals(orig), `${input}: exact removal`).toBe(true);
      expect(undone.bytesAdded + syncReport.bytesAdded).toBe(0);
      expect(undone.bytesChanged).toBe(syncReport.bytesChanged);
      const size = syncReport.bytesAdded > 0 ? `${syncReport.bytesAdded} removed` : '0 added';
      expect(undone.message).toContain(`restored the original bytes (${syncReport.bytesChanged} bytes changed in place, ${size}, ${syncReport.bytesMoved} moved`);
      expect(undone.moved).toEqual(syncReport.moved.map((m) => ({ from: m.to, to: m.from, length: m.length })));

      // The file's last byte changed since the edit: only the final hash tells, after every chunk was
      // written; both writers then start over and delete the entry in place.
      const changed = Buffer.from(readFileSync(sync));
      changed[changed.length - 1] ^= 0x20;
      const stale = join(tmp.dir, `${i}.stale`);
      writeFileSync(stale, changed, { mode: 0o755 });
      copyFileSync(stale, `${stale}2`);
      const syncBack = editElfFile(stale, remove(stale));
      const asyncBack = await editElfFileAsync(`${stale}2`, remove(`${stale}2`));
      expect(syncBack.tier).toBe('remove');
      expect(asyncBack).toEqual({ ...syncBack, message: syncBack.message.replace(stale, `${stale}2`) });
      expect(readFileSync(`${stale}2`).equals(readFileSync(stale)), `${input}: stale removal`).toBe(true);
    }
    expect(readdirSync(tmp.dir).filter((n) => n.includes('.mambapatch-'))).toEqual([]);
  });
});
