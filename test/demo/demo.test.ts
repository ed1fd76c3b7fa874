/** `mambapatch demo`, the README's first command: as root it shows both errors, the fix and the undo. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { runAs } from '../helpers/users.js';
import { CLI } from '../fixtures/prefix.js';

const demoDirs = () => fs.readdirSync('/tmp').filter((n) => n.startsWith('mambapatch-demo-') && !n.startsWith('mambapatch-demo-cache')).sort();

describe.skipIf(missing({ root: true, tools: ['g++', 'setpriv'] }))('mambapatch demo', () => {
  it('as root: the two real errors, success after apply, errors again after revert, then cleans up', () => {
    const before = demoDirs();
    const r = spawnSync(process.execPath, [CLI, 'demo'], { encoding: 'utf8', env: { PATH: process.env.PATH, NO_COLOR: '1' } });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const out = r.stdout;
    const idx = (s: string, from = 0) => out.indexOf(s, from);
    const err1 = 'filesystem error: cannot set file time: Operation not permitted';
    const err2 = 'critical libmamba filesystem error: cannot set permissions: Operation not permitted';
    const applied = idx('== mambapatch apply');
    const reverted = idx('== After revert');
    expect(idx(err1)).toBeGreaterThan(-1);
    expect(idx(err1)).toBeLessThan(applied);
    expect(idx(err2)).toBeLessThan(applied);
    expect(idx('mamba 1.x stand-in: install finished', applied)).toBeGreaterThan(applied);
    expect(idx('mamba 2.x stand-in: install finished', applied)).toBeGreaterThan(applied);
    expect(idx(err1, reverted)).toBeGreaterThan(reverted);
    expect(idx(err2, reverted)).toBeGreaterThan(reverted);
    // The static micromamba: the error before, fixed by supervise (this kernel has it), the error after revert.
    const micro = (from: number) => idx('micromamba/bin/micromamba install', from);
    expect(out.slice(micro(0), applied)).toContain(err2);
    expect(out.slice(micro(applied), reverted)).toContain('mamba 2.x stand-in: install finished');
    expect(out).toContain('patched      bin/micromamba  (micromamba 2.3.0 [supervise])');
    expect(out.slice(micro(reverted))).toContain(err2);
    expect(out).not.toMatch(/\u001b\[/); // no colour when not on a TTY
    expect(demoDirs()).toEqual(before);
  });

  // The checkout must be readable by another uid (it is not when it lives under root's home).
  const reachable = () => runAs({ uid: 4102, gid: 4100 }, '/usr/bin/test', ['-r', CLI]).status === 0;
  it.skipIf(!reachable() && 'the checkout is not readable by uid 4102')('without root: says that switching users needs root and shows the rest', () => {
    const r = runAs({ uid: 4102, gid: 4100 }, process.execPath, [CLI, 'demo'], { env: { PATH: '/usr/bin:/bin', NO_COLOR: '1' }, timeout: 120_000 });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('Switching users needs root');
    expect(r.stdout).toContain('== mambapatch apply');
    expect(r.stdout).toContain('mamba 2.x stand-in: install finished');
    expect(r.stdout).toContain('Reverted:');
  });
});
