/**
 * apply and revert keep memory bounded: on a shared prefix whose mamba 2.x executable carries 160 MiB more
 * (a section of incompressible bytes, as debug info would be), `apply --method needed` (which streams the
 * edit of bin/mamba, keeps its original and archives it in backup.tar), `status` and `doctor` on the
 * patched prefix, `revert` (which renames the original back) and a revert from backup.tar alone peak
 * within a fixed margin of the same commands on the plain stand-in, and under 64 MiB; the big prefix is
 * still fixed for a second member of the group and comes back exactly.
 * Peak RSS comes from GNU time (`%M`) in a child process; no timing is asserted.
 */
import { execFileSync } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { TIME, cliPeak } from '../helpers/peak.js';
import { FAIL_2X, cli, makePrefix, memberInstall, snapshot, type Fixture } from '../fixtures/prefix.js';

/** What the same command may use on the big prefix beyond the small one. */
const MARGIN_KIB = 16 * 1024;
/** The engine's limit for every command on any file (issue 9). */
const LIMIT_KIB = 64 * 1024;
const PAD_MIB = 160;
const MEASURED = ['apply', 'status', 'doctor', 'revert', 'revert from backup.tar'] as const;
type Measured = (typeof MEASURED)[number];

const needs = missing({ root: true, tools: ['g++', 'setpriv', 'objcopy', TIME] });
const fixtures: Fixture[] = [];
afterAll(() => fixtures.forEach((f) => f.cleanup()));

/** Adds `mib` MiB of random bytes to `file` as a non-allocated section, writing through its pkgs/ hard link. */
function pad(file: string, mib: number, dir: string): void {
  const blob = path.join(dir, 'pad.bin');
  const fd = fs.openSync(blob, 'w');
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < mib; i++) fs.writeSync(fd, randomFillSync(chunk));
  fs.closeSync(fd);
  const padded = path.join(dir, 'padded.so');
  execFileSync('objcopy', ['--add-section', `.mambapatch.test.pad=${blob}`, file, padded]);
  fs.copyFileSync(padded, file); // in place: owner, mode and the pkgs/ hard link stay
  fs.rmSync(blob);
  fs.rmSync(padded);
}

describe.skipIf(needs)('apply and revert at scale', () => {
  it(`peak memory does not grow with bin/mamba's size (+${PAD_MIB} MiB); the big prefix is fixed and reverted exactly`, () => {
    const run = (tag: string, padMiB: number): Record<Measured, number> => {
      const f = makePrefix(tag, { mamba2: true });
      fixtures.push(f);
      const exe = path.join(f.prefix, 'bin', 'mamba');
      if (padMiB) pad(exe, padMiB, f.dir);
      expect(fs.statSync(exe).size).toBeGreaterThan(padMiB << 20);
      const original = snapshot(f.prefix);
      expect(memberInstall(f.prefix).stderr).toContain(FAIL_2X);

      const apply = cliPeak(['apply', f.prefix, '--method', 'needed', '-q']);
      expect(apply.status, apply.stderr).toBe(0);
      // The original was kept and archived whole.
      expect(fs.statSync(path.join(f.prefix, '.mambapatch', 'backup.tar')).size).toBeGreaterThan(padMiB << 20);
      const fixed = memberInstall(f.prefix);
      expect({ status: fixed.status, stderr: fixed.stderr }).toEqual({ status: 0, stderr: '' });
      // Inspection of the patched prefix: status compares the patched file with its record, doctor reads it.
      const status = cliPeak(['status', f.prefix, '--check', '-q']);
      expect(status.status, status.stderr).toBe(0);
      const doctor = cliPeak(['doctor', f.prefix, '--json']);
      expect(doctor.status === 0 || doctor.status === 3, doctor.stderr).toBe(true);

      const revert = cliPeak(['revert', f.prefix, '-q']);
      expect(revert.status, revert.stderr).toBe(0);
      expect(snapshot(f.prefix)).toEqual(original);

      // Without originals/ (another filesystem, or removed), revert takes the bytes from backup.tar.
      const hash = () => createHash('sha256').update(fs.readFileSync(exe)).digest('hex');
      const want = hash();
      expect(cli(['apply', f.prefix, '--method', 'needed', '-q']).status).toBe(0);
      fs.rmSync(path.join(f.prefix, '.mambapatch', 'originals'), { recursive: true });
      const fromTar = cliPeak(['revert', f.prefix, '--json']);
      expect(fromTar.status, fromTar.stderr).toBe(0);
      expect(JSON.parse(fromTar.stdout).restored).toEqual([{ path: 'bin/mamba', how: 'written' }]);
      expect(hash()).toBe(want);
      return { apply: apply.kib, status: status.kib, doctor: doctor.kib, revert: revert.kib, 'revert from backup.tar': fromTar.kib };
    };
    const small = run('apply-scale-small', 0);
    const big = run('apply-scale-big', PAD_MIB);
    console.log(`peak KiB: plain ${JSON.stringify(small)}, +${PAD_MIB} MiB ${JSON.stringify(big)}`);
    for (const what of MEASURED) {
      expect(big[what] - small[what], `${what}: ${big[what]} KiB with +${PAD_MIB} MiB vs ${small[what]} KiB`).toBeLessThan(MARGIN_KIB);
      expect(big[what], `${what}: ${big[what]} KiB with +${PAD_MIB} MiB`).toBeLessThan(LIMIT_KIB);
    }
  }, 300_000);
});
