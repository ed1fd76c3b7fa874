/**
 * Crash safety and locking: a real SIGKILL at every checkpoint of apply and revert (the process kills itself
 * between two durable steps when MAMBAPATCH_TEST_KILL_AT=N), kills after random delays from outside, and two
 * applies at once. Afterwards apply ends patched and revert ends byte-identical to the original tree.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { CLI, cli, cliAsync, FAIL_1X, FAIL_2X, makePrefix, mambaUpdate, memberInstall, snapshot, type Fixture } from '../fixtures/prefix.js';
import { underSizeLimit } from '../helpers/fsize.js';

const needs = missing({ root: true, tools: ['g++', 'setpriv'] });
const fixtures: Fixture[] = [];
afterAll(() => fixtures.forEach((f) => f.cleanup()));

/** Runs `mambapatch ARGS -q` with its N-th checkpoint killed (SIGKILL) or failed (as a write would). */
function atCheckpoint(hook: 'KILL' | 'FAIL', n: number, args: string[]): { signal: NodeJS.Signals | null; status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, '-q'], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, [`MAMBAPATCH_TEST_${hook}_AT`]: String(n) },
  });
  return { signal: r.signal, status: r.status, stderr: r.stderr };
}

/**
 * Fails apply at checkpoint 1, 2, ... until it runs through: every failure exits 1 with one line and leaves
 * the tree as `before`. Returns the number of the first checkpoint past the last one.
 */
function failAtEveryCheckpoint(prefix: string, before: string[]): number {
  let n = 1;
  for (; n < 40; n++) {
    const r = atCheckpoint('FAIL', n, ['apply', prefix]);
    if (r.status === 0) break;
    expect({ n, status: r.status, stderr: r.stderr }).toEqual({ n, status: 1, stderr: 'mambapatch: EIO: i/o error (MAMBAPATCH_TEST_FAIL_AT)\n' });
    expect(snapshot(prefix), `failure at checkpoint ${n}`).toEqual(before);
  }
  return n;
}

const SHAPES = [
  { name: 'mamba 2.x + micromamba (needed)', spec: { mamba2: true, micromamba: 'dynamic' as const }, fail: FAIL_2X },
  { name: 'mamba 1.x (launcher)', spec: { mamba1: true }, fail: FAIL_1X },
];

describe.skipIf(needs)('crash safety and locking', () => {
  for (const shape of SHAPES) {
    it(`apply killed at every checkpoint, then apply / revert / status: ${shape.name}`, () => {
      const f = makePrefix('crash', shape.spec);
      fixtures.push(f);
      const { prefix } = f;
      const original = snapshot(prefix);
      let n = 1;
      for (; n < 40; n++) {
        const r = atCheckpoint('KILL', n, ['apply', prefix]);
        if (r.signal !== 'SIGKILL') {
          expect(r.status).toBe(0); // ran to the end: every checkpoint has been tried
          expect(cli(['revert', prefix, '-q']).status).toBe(0);
          break;
        }
        // Recovery by whichever command comes next.
        const next = n % 3;
        if (next === 0) {
          // revert straight away: the tree is the original again
          const rev = cli(['revert', prefix]);
          expect(rev.status, rev.stderr).toBe(0);
        } else {
          const fin = cli(next === 1 ? ['apply', prefix] : ['status', prefix]);
          expect(fin.status, fin.stderr).toBe(0);
          expect(fs.existsSync(path.join(prefix, '.mambapatch', 'journal.json'))).toBe(false);
          const check = cli(['status', prefix, '--json', '--check']);
          expect(check.status, `checkpoint ${n}: ${check.stderr}${check.stdout}`).toBe(0);
          expect(JSON.parse(check.stdout).problems).toEqual([]);
          const ok = memberInstall(prefix);
          expect(ok.status, `checkpoint ${n}: ${ok.stderr}`).toBe(0);
          expect(cli(['revert', prefix, '-q']).status).toBe(0);
        }
        expect(snapshot(prefix), `after a kill at checkpoint ${n}`).toEqual(original);
      }
      expect(n).toBeGreaterThan(5);
      expect(memberInstall(prefix).stderr).toContain(shape.fail);
    });

  }

  // Revert's steps are alike for both shapes (rename back, remove); the launcher shape has every kind.
  for (const shape of SHAPES.filter((s) => s.spec.mamba1)) {
    it(`revert killed at every checkpoint, then revert / apply: ${shape.name}`, () => {
      const f = makePrefix('crashrev', shape.spec);
      fixtures.push(f);
      const { prefix } = f;
      const original = snapshot(prefix);
      for (let n = 1; n < 40; n++) {
        expect(cli(['apply', prefix, '-q']).status).toBe(0);
        const r = atCheckpoint('KILL', n, ['revert', prefix]);
        if (r.signal !== 'SIGKILL') {
          expect(r.status).toBe(0);
          expect(snapshot(prefix)).toEqual(original);
          break;
        }
        if (n % 2 === 0) {
          // apply again after the interrupted revert: patched
          expect(cli(['apply', prefix, '-q']).status).toBe(0);
          expect(memberInstall(prefix).status).toBe(0);
        }
        const rev = cli(['revert', prefix]);
        expect(rev.status, rev.stderr).toBe(0);
        expect(snapshot(prefix), `after a kill at checkpoint ${n}`).toEqual(original);
      }
    });
  }

  it('apply killed from outside after random delays, then applied and reverted', async () => {
    const f = makePrefix('randkill', { mamba2: true, micromamba: 'dynamic' });
    fixtures.push(f);
    const { prefix } = f;
    const original = snapshot(prefix);
    for (let i = 0; i < 6; i++) {
      const child = cliAsync(i % 2 ? ['revert', prefix] : ['apply', prefix]);
      const closed = new Promise((res) => child.on('close', res));
      const delay = 20 + Math.floor(Math.random() * 400);
      await new Promise((res) => setTimeout(res, delay));
      child.kill('SIGKILL');
      await closed;
    }
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    expect(memberInstall(prefix, 'bin/micromamba').status).toBe(0);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
    expect(snapshot(prefix)).toEqual(original);
  });

  it('two applies at once end in one consistent state', async () => {
    const f = makePrefix('concurrent', { mamba2: true, micromamba: 'dynamic' });
    fixtures.push(f);
    const { prefix } = f;
    const original = snapshot(prefix);
    for (let round = 0; round < 3; round++) {
      const runs = [cliAsync(['apply', prefix, '--json']), cliAsync(['apply', prefix, '--json'])];
      const results = await Promise.all(
        runs.map(
          (c) =>
            new Promise<{ code: number | null; out: string }>((res) => {
              let out = '';
              c.stdout!.on('data', (d) => (out += d));
              c.on('close', (code) => res({ code, out }));
            }),
        ),
      );
      expect(results.map((r) => r.code)).toEqual([0, 0]);
      const changed = results.map((r) => JSON.parse(r.out).changed);
      expect(changed.filter(Boolean)).toHaveLength(1);
      const st = JSON.parse(cli(['status', prefix, '--json', '--check']).stdout);
      expect(st.problems).toEqual([]);
      const manifest = JSON.parse(fs.readFileSync(path.join(prefix, '.mambapatch', 'manifest.json'), 'utf8'));
      expect(manifest.entries).toHaveLength(3);
      expect(memberInstall(prefix).status).toBe(0);
      expect(cli(['revert', prefix, '-q']).status).toBe(0);
      expect(snapshot(prefix)).toEqual(original);
    }
  });

  it('a write that fails at any step of apply rolls it back: the tree as it was, exit 1, one line', () => {
    const f = makePrefix('rollback', { mamba2: true, micromamba: 'dynamic' });
    fixtures.push(f);
    const { prefix } = f;
    expect(failAtEveryCheckpoint(prefix, snapshot(prefix))).toBeGreaterThan(5); // journal, originals, backup, manifest, each file, watch
    expect(memberInstall(prefix).status).toBe(0);

    // Over an earlier apply: "mamba update" replaced bin/mamba, so apply keeps the new original in place of
    // the old one and rewrites backup.tar, the manifest and the watch list; a failure puts all of it back.
    mambaUpdate(prefix);
    expect(failAtEveryCheckpoint(prefix, snapshot(prefix))).toBeGreaterThan(5);
    expect(memberInstall(prefix).status).toBe(0);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
  });

  it.skipIf(missing({ tools: ['prlimit'] }))('a real write failure (file size limit, as on a full disk) changes nothing and names the file', () => {
    const f = makePrefix('efbig', { mamba2: true, micromamba: 'dynamic' });
    fixtures.push(f);
    const { prefix } = f;
    const original = snapshot(prefix);
    // A run that succeeds tells the sizes: the edited executable and backup.tar.
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    const edited = fs.statSync(path.join(prefix, 'bin', 'micromamba')).size;
    const backup = fs.statSync(path.join(prefix, '.mambapatch', 'backup.tar')).size;
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
    expect(backup).toBeGreaterThan(edited);
    const limited = (bytes: number, cmd: string) => underSizeLimit(bytes, process.execPath, [CLI, cmd, prefix]);
    // The edit, written first into a private copy; then backup.tar, cut short at its very end.
    for (const [bytes, names] of [[4096, /^mambapatch: \S+\/bin\/(micro)?mamba: cannot write: EFBIG: .* \(its edited copy, in \S+\)\n$/], [backup - 1, /^mambapatch: \S+\/\.mambapatch\/backup\.tar: cannot write: EFBIG: .*\n$/]] as const) {
      const r = limited(bytes, 'apply');
      expect(r.status, r.stderr).toBe(1);
      expect(r.stderr).toMatch(names);
      expect(snapshot(prefix), `limit ${bytes}`).toEqual(original);
    }
    // A revert that must write an original from backup.tar (originals/ gone) and cannot: one line naming
    // the file, and the next command finishes it.
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    fs.rmSync(path.join(prefix, '.mambapatch', 'originals'), { recursive: true });
    const r = limited(4096, 'revert');
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^mambapatch: \S+\/bin\/(micro)?mamba: cannot write: EFBIG: .*\n$/);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
    const content = (l: string) => l.split(' ').filter((_, i) => i !== 4); // link counts aside: the pkgs/ links are gone with originals/
    expect(snapshot(prefix).map(content)).toEqual(original.map(content));
  });

  it('breaks a stale lock left by a dead process', () => {
    const f = makePrefix('stalelock', { mamba2: true });
    fixtures.push(f);
    const { prefix } = f;
    fs.mkdirSync(path.join(prefix, '.mambapatch'), { mode: 0o755 });
    fs.chmodSync(path.join(prefix, '.mambapatch'), 0o755);
    const dead = spawnSync('true').pid!;
    fs.writeFileSync(path.join(prefix, '.mambapatch', 'lock'), JSON.stringify({ pid: dead, host: os.hostname(), started: 'x' }));
    const r = cli(['apply', prefix, '-q']);
    expect(r.status, r.stderr).toBe(0);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
  });
});
