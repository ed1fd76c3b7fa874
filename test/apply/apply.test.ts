/**
 * apply / revert / status on fixture prefixes with real layouts, proved by running the stand-ins as a
 * second member of the group (the kernel decides) and by comparing whole-tree snapshots.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { MEMBER, OUTSIDER, runAs } from '../helpers/users.js';
import { CLI, cli, FAIL_1X, FAIL_2X, makePrefix, makePrefixAt, mambaUpdate, memberInstall, readJson, snapshot, type Fixture } from '../fixtures/prefix.js';

const needs = missing({ root: true, tools: ['g++', 'setpriv'] });
const fixtures: Fixture[] = [];
afterAll(() => fixtures.forEach((f) => f.cleanup()));
function fixture(tag: string, spec: Parameters<typeof makePrefix>[1]): Fixture {
  const f = makePrefix(tag, spec);
  fixtures.push(f);
  return f;
}

interface Case {
  name: string;
  spec: Parameters<typeof makePrefix>[1];
  method: 'auto' | 'needed' | 'launcher' | 'supervise';
  entries: { entry: string; fail: string; ok: string }[];
}

const MAMBA1 = { entry: 'bin/mamba', fail: FAIL_1X, ok: 'mamba 1.x stand-in: install finished' };
const MAMBA2 = { entry: 'bin/mamba', fail: FAIL_2X, ok: 'mamba 2.x stand-in: install finished' };
const MICRO = { entry: 'bin/micromamba', fail: FAIL_2X, ok: 'mamba 2.x stand-in: install finished' };
const MICRO1 = { entry: 'bin/micromamba', fail: FAIL_1X, ok: 'mamba 1.x stand-in: install finished' };

const CASES: Case[] = [
  { name: 'mamba 2.x + dynamic micromamba, auto (needed)', spec: { mamba2: true, micromamba: 'dynamic' }, method: 'auto', entries: [MAMBA2, MICRO] },
  { name: 'mamba 2.x, launcher', spec: { mamba2: true }, method: 'launcher', entries: [MAMBA2] },
  { name: 'mamba 1.x, auto (launcher)', spec: { mamba1: true }, method: 'auto', entries: [MAMBA1] },
  { name: 'mamba 1.x, needed on libmamba', spec: { mamba1: true }, method: 'needed', entries: [MAMBA1] },
  { name: 'static micromamba 2.x, auto (supervise)', spec: { micromamba: 'static' }, method: 'auto', entries: [MICRO] },
  { name: 'static-pie micromamba 1.x, auto (supervise)', spec: { micromamba: 'static-pie', micromambaMajor: 1 }, method: 'auto', entries: [MICRO1] },
  { name: 'static micromamba 1.x + mamba 2.x, auto (supervise + needed)', spec: { mamba2: true, micromamba: 'static', micromambaMajor: 1 }, method: 'auto', entries: [MAMBA2, MICRO1] },
  { name: 'mamba 2.x, supervise on a dynamic executable', spec: { mamba2: true }, method: 'supervise', entries: [MAMBA2] },
];

describe.skipIf(needs)('apply and revert, proved as a second member of the group', () => {
  for (const c of CASES) {
    it(c.name, () => {
      const { prefix } = fixture('apply', c.spec);
      const original = snapshot(prefix);
      for (const e of c.entries) {
        const r = memberInstall(prefix, e.entry);
        expect(r.status, r.stderr).toBe(1);
        expect(r.stderr).toContain(e.fail);
      }

      // --dry-run prints the plan and changes nothing.
      const dry = cli(['apply', prefix, '--dry-run', '--method', c.method]);
      expect(dry.status, dry.stderr).toBe(0);
      expect(dry.stdout).toContain('Would do (dry run');
      expect(snapshot(prefix)).toEqual(original);

      const first = cli(['apply', prefix, '--method', c.method, '--detailed-exitcode']);
      expect(first.status, first.stderr + first.stdout).toBe(10);
      for (const e of c.entries) {
        const r = memberInstall(prefix, e.entry);
        expect(r.stderr).toBe('');
        expect(r.stdout).toContain(e.ok);
        expect(r.status).toBe(0);
      }
      // pkgs/ copies stay byte-identical (never written through a hard link).
      for (const line of original.filter((l) => l.startsWith('pkgs/') && !l.startsWith('pkgs/cache'))) {
        const rel = line.split(' ')[0]!;
        const now = snapshot(prefix).find((l) => l.startsWith(`${rel} `))!;
        expect(now.split(' ').filter((_, i) => i !== 4)).toEqual(line.split(' ').filter((_, i) => i !== 4));
      }

      // Idempotent: the second apply changes nothing and says so.
      const patched = snapshot(prefix);
      const second = cli(['apply', prefix, '--method', c.method, '--detailed-exitcode']);
      expect(second.status, second.stderr).toBe(0);
      expect(second.stdout).toContain('Nothing to change');
      expect(snapshot(prefix)).toEqual(patched);

      const st = cli(['status', prefix, '--check', '--json']);
      expect(st.status, st.stdout).toBe(0);
      const doc = JSON.parse(st.stdout);
      expect(doc.targets.every((t: { state: string }) => t.state === 'patched')).toBe(true);
      expect(fs.readFileSync(path.join(prefix, '.mambapatch', 'watch'), 'utf8').trim().split('\n').length).toBeGreaterThan(0);

      const rev = cli(['revert', prefix, '--detailed-exitcode']);
      expect(rev.status, rev.stderr + rev.stdout).toBe(10);
      expect(snapshot(prefix)).toEqual(original);
      for (const e of c.entries) {
        const r = memberInstall(prefix, e.entry);
        expect(r.status).toBe(1);
        expect(r.stderr).toContain(e.fail);
      }
      const again = cli(['revert', prefix, '--detailed-exitcode']);
      expect(again.status).toBe(0);
      expect(snapshot(prefix)).toEqual(original);
    });
  }

  it('status --check exits 3 before apply and when a patched file was replaced (stale)', () => {
    const { prefix } = fixture('stale', { mamba2: true });
    expect(cli(['status', prefix, '--check']).status).toBe(3);
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    mambaUpdate(prefix);
    const st = cli(['status', prefix, '--check', '--json']);
    expect(st.status).toBe(3);
    expect(JSON.parse(st.stdout).targets[0].state).toBe('stale');
    // revert leaves the changed file alone and says so; apply patches the new one.
    const dry = cli(['revert', prefix, '--dry-run']);
    expect(dry.stdout).toContain('changed since apply');
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    expect(memberInstall(prefix).status).toBe(0);
    const rev = cli(['revert', prefix, '--json']);
    expect(rev.status).toBe(0);
    expect(JSON.parse(rev.stdout).changed).toBe(true);
    expect(fs.existsSync(path.join(prefix, '.mambapatch'))).toBe(false);
    expect(fs.existsSync(path.join(prefix, 'lib', 'libmambapatch.so'))).toBe(false);
    expect(memberInstall(prefix).stderr).toContain(FAIL_2X);
  });

  it('needed: a moved prefix keeps working (the shim is found through $ORIGIN), also through a symlink', () => {
    const f = fixture('moved', { mamba2: true });
    expect(cli(['apply', f.prefix, '-q']).status).toBe(0);
    const moved = path.join(f.dir, 'moved-elsewhere');
    fs.renameSync(f.prefix, moved);
    const r = memberInstall(moved);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    fs.symlinkSync(path.join(moved, 'bin', 'mamba'), path.join(f.dir, 'mamba-link'));
    expect(runAs(MEMBER, path.join(f.dir, 'mamba-link'), ['install']).status).toBe(0);
    fs.renameSync(moved, f.prefix);
    expect(cli(['revert', f.prefix, '-q']).status).toBe(0);
  });

  it('a prefix path with a space: launcher refused with a hint, needed works (conda\'s long shebang form)', () => {
    const f = fixture('space', {});
    const prefix = path.join(f.dir, 'shared conda');
    makePrefixAt(prefix, { mamba1: true });
    expect(fs.readFileSync(path.join(prefix, 'bin', 'mamba'), 'utf8')).toMatch(/^#!\/bin\/sh\n'''exec' "/);
    const before = snapshot(prefix);
    const r = cli(['apply', prefix]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/space or a colon, which LD_PRELOAD cannot carry; use --method needed/);
    expect(snapshot(prefix)).toEqual(before);
    const n = cli(['apply', prefix, '--method', 'needed', '-q']);
    expect(n.status, n.stderr).toBe(0);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
    expect(snapshot(prefix)).toEqual(before);
  });

  it.each([
    ['static', 'needed'],
    ['static-pie', 'launcher'],
  ] as const)('a fully static binary (%s) with --method %s: exit 1, names --method supervise, changes nothing', (kind, method) => {
    const { prefix } = fixture('static', { micromamba: kind });
    const before = snapshot(prefix);
    const r = cli(['apply', prefix, '--method', method]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`bin/micromamba is fully static: no library can be loaded into it, so the ${method} method cannot work; use --method supervise`));
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    const j = cli(['apply', prefix, '--json', '--method', method]);
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, exitCode: 1 });
    expect(snapshot(prefix)).toEqual(before);
    const st = JSON.parse(cli(['status', prefix, '--json']).stdout);
    expect(st.targets[0]).toMatchObject({ state: 'unpatched', method: 'supervise' });
    expect(st.supervise.supported).toBe(true);
    expect(cli(['apply', prefix, '--method', 'supervise', '--dry-run', '--json']).status).toBe(0);
  });

  it('--exe: a static micromamba outside the prefix (MAMBA_ROOT_PREFIX) is patched, listed and reverted exactly', () => {
    const f = fixture('exe', { micromamba: 'static' });
    const outsideDir = path.join(f.dir, 'usr-local-bin');
    fs.mkdirSync(outsideDir, { mode: 0o755 });
    const exe = path.join(outsideDir, 'micromamba');
    fs.copyFileSync(path.join(f.prefix, 'bin', 'micromamba'), exe);
    fs.chmodSync(exe, 0o755);
    fs.rmSync(path.join(f.prefix, 'bin', 'micromamba'));
    const run = () => runAs(MEMBER, exe, ['install'], { env: { PATH: '/usr/bin:/bin', MAMBA_ROOT_PREFIX: f.prefix } });
    const tree = snapshot(f.prefix);
    const outside = snapshot(outsideDir);
    expect(run().stderr).toContain(FAIL_2X);

    // Refusals: not an ELF file, a symlink (name its target); nothing changes.
    const script = path.join(outsideDir, 'script');
    fs.writeFileSync(script, '#!/bin/sh\n');
    const link = path.join(outsideDir, 'link');
    fs.symlinkSync(exe, link);
    expect(cli(['apply', f.prefix, '--exe', script]).stderr).toMatch(/script: cannot use --exe: not an ELF executable\n$/);
    expect(cli(['apply', f.prefix, '--exe', link]).stderr).toMatch(new RegExp(`link: cannot use --exe: a symlink \\(name its target, ${exe}\\)`));
    expect(cli(['apply', f.prefix, '--exe', path.join(outsideDir, 'missing')]).status).toBe(1);
    fs.rmSync(script);
    fs.rmSync(link);
    expect(snapshot(f.prefix)).toEqual(tree);

    const a = cli(['apply', f.prefix, '--exe', exe, '--json']);
    expect(a.status, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout).plan.steps.map((s: { action: string; path: string }) => `${s.action} ${s.path}`)).toEqual([`add-entry-hook ${exe}`]);
    const r = run();
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // status and a plain apply (the hook script's) find it from the manifest.
    const st = JSON.parse(cli(['status', f.prefix, '--check', '--json']).stdout);
    expect(st.targets).toMatchObject([{ path: exe, state: 'patched', method: 'supervise' }]);
    expect(cli(['apply', f.prefix, '--detailed-exitcode']).status).toBe(0);
    expect(fs.readFileSync(path.join(f.prefix, '.mambapatch', 'watch'), 'utf8')).toBe(`${exe}\n`);
    expect(fs.existsSync(path.join(f.prefix, '.mambapatch', 'originals', '_outside', exe))).toBe(true);

    const rev = cli(['revert', f.prefix, '--detailed-exitcode']);
    expect(rev.status, rev.stderr).toBe(10);
    expect(snapshot(f.prefix)).toEqual(tree);
    expect(snapshot(outsideDir)).toEqual(outside);
    expect(run().stderr).toContain(FAIL_2X);
  });

  it('revert keeps the shim while a file it leaves alone still loads it (a tampered manifest)', () => {
    const { prefix } = fixture('tamper', { mamba2: true });
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    const mf = path.join(prefix, '.mambapatch', 'manifest.json');
    const m = readJson(mf);
    m.entries.find((e: { path: string }) => e.path === 'bin/mamba').after.sha256 = '0'.repeat(64);
    fs.writeFileSync(mf, JSON.stringify(m));
    const r = cli(['revert', prefix]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/bin\/mamba: changed since apply/);
    expect(r.stdout).toMatch(/libmambapatch\.so: kept: still loaded by bin\/mamba/);
    expect(memberInstall(prefix).status).toBe(0);
  });

  it('refuses a state directory owned by someone else, or writable by the group', () => {
    const { prefix } = fixture('trust', { mamba2: true });
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    const state = path.join(prefix, '.mambapatch');
    const patched = snapshot(prefix);
    fs.chownSync(state, OUTSIDER.uid, OUTSIDER.gid);
    for (const cmd of [['revert'], ['apply'], ['status']]) {
      const r = cli([...cmd, prefix]);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(/untrusted mambapatch state: owned by uid 4103/);
    }
    fs.chownSync(state, 0, 0);
    fs.chmodSync(path.join(state, 'manifest.json'), 0o664);
    const r = cli(['revert', prefix]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/manifest\.json: untrusted mambapatch state: mode 0664/);
    const outside = (l: string) => !l.startsWith('.mambapatch');
    expect(snapshot(prefix).filter(outside)).toEqual(patched.filter(outside));
    fs.chmodSync(path.join(state, 'manifest.json'), 0o644);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
  });

  it('finds the prefix from MAMBA_ROOT_PREFIX and from mamba on PATH, and says which', () => {
    const { prefix } = fixture('resolve', { mamba2: true });
    const a = cli(['status'], { MAMBA_ROOT_PREFIX: prefix });
    expect(a.stdout).toContain(`${prefix} (prefix from $MAMBA_ROOT_PREFIX)`);
    const b = cli(['status', '--json'], { PATH: `${path.join(prefix, 'condabin')}:${path.join(prefix, 'bin')}:/usr/bin:/bin` });
    expect(JSON.parse(b.stdout).prefixFrom).toBe(`mamba on PATH (${path.join(prefix, 'bin', 'mamba')})`);
    const c = cli(['revert', '--dry-run'], { PATH: '/usr/bin:/bin' });
    expect(c.status).toBe(2);
    expect(c.stderr).toMatch(/no prefix given/);
  });

  it('--json prints one document and nothing else', () => {
    const { prefix } = fixture('json', { mamba2: true });
    for (const args of [['apply', '--dry-run'], ['apply'], ['status'], ['revert']]) {
      const r = cli([...args, prefix, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(() => JSON.parse(r.stdout)).not.toThrow();
      expect(r.stderr).toBe('');
    }
    const m = cli(['apply', prefix, '--method', 'bogus']);
    expect(m.status).toBe(2);
  });

  it('refuses to take the name of the kept original when it belongs to someone else', () => {
    const { prefix } = fixture('taken', { mamba1: true });
    fs.writeFileSync(path.join(prefix, 'bin', '.mamba.mambapatch-orig'), 'not ours\n');
    const before = snapshot(prefix);
    const r = cli(['apply', prefix]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/taken by a file mambapatch did not create/);
    expect(snapshot(prefix)).toEqual(before);
  });

  it('a static micromamba beside a dynamic mamba: each gets its own method', () => {
    const { prefix } = fixture('mixed', { mamba2: true, micromamba: 'static' });
    const r = cli(['apply', prefix, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout);
    expect(doc.plan.targets.map((t: { path: string; state: string; method: string }) => `${t.path} ${t.state} ${t.method}`)).toEqual([
      'bin/mamba unpatched needed',
      'bin/micromamba unpatched supervise',
    ]);
    expect(memberInstall(prefix).status).toBe(0);
    expect(memberInstall(prefix, 'bin/micromamba').status).toBe(0);
    const st = JSON.parse(cli(['status', prefix, '--check', '--json']).stdout);
    expect(st).toMatchObject({ ok: true, methods: ['needed', 'supervise'], supervise: { supported: true } });
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
    expect(memberInstall(prefix, 'bin/micromamba').stderr).toContain(FAIL_2X);
  });

  it('mamba 1.x with condabin/mamba as a second console script: both wrapped, or libmamba patched once', () => {
    const { prefix } = fixture('condabin', { mamba1: true });
    fs.rmSync(path.join(prefix, 'condabin', 'mamba'));
    fs.copyFileSync(path.join(prefix, 'bin', 'mamba'), path.join(prefix, 'condabin', 'mamba'));
    const original = snapshot(prefix);
    expect(memberInstall(prefix, 'condabin/mamba').stderr).toContain(FAIL_1X);
    const dry = JSON.parse(cli(['apply', prefix, '--dry-run', '--json', '--method', 'needed']).stdout);
    expect(dry.plan.steps.map((s: { path: string }) => s.path)).toEqual(['lib/libmambapatch.so', 'lib/libmamba.so.2']);
    const applied = cli(['apply', prefix, '-q']);
    expect(applied.status, applied.stderr).toBe(0);
    const m = readJson(path.join(prefix, '.mambapatch', 'manifest.json'));
    expect(m.entries.filter((e: { role: string }) => e.role === 'target').map((e: { path: string }) => e.path)).toEqual(['bin/mamba', 'condabin/mamba']);
    for (const entry of ['bin/mamba', 'condabin/mamba']) expect(memberInstall(prefix, entry).status).toBe(0);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
    expect(snapshot(prefix)).toEqual(original);
  });

  it('apply by a group member who is not the owner: one-line refusal, nothing changed, no state left', () => {
    const { prefix } = fixture('member', { mamba2: true });
    const before = snapshot(prefix);
    const r = runAs(MEMBER, process.execPath, [CLI, 'apply', prefix], { env: { PATH: '/usr/bin:/bin', NO_COLOR: '1' } });
    expect(r.status, r.stderr).toBe(1);
    expect(r.stderr).toMatch(/^mambapatch: .*owned by uid 4101: only its owner or root/);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(snapshot(prefix)).toEqual(before);
    const st = runAs(MEMBER, process.execPath, [CLI, 'status', prefix, '--check'], { env: { PATH: '/usr/bin:/bin', NO_COLOR: '1' } });
    expect(st.status).toBe(3);
  });

  it('revert removes a state directory without a manifest (e.g. only a hook), and says it changed something', () => {
    const { prefix } = fixture('hookonly', { mamba2: true });
    const state = path.join(prefix, '.mambapatch');
    fs.mkdirSync(state);
    fs.chmodSync(state, 0o755);
    fs.writeFileSync(path.join(state, 'hook.sh'), '#!/bin/sh\n');
    expect(cli(['revert', prefix, '--detailed-exitcode', '-q']).status).toBe(10);
    expect(fs.existsSync(state)).toBe(false);
    expect(cli(['revert', prefix, '--detailed-exitcode', '-q']).status).toBe(0);
  });

  it('keeps a manifest that records every changed file', () => {
    const { prefix } = fixture('manifest', { mamba1: true });
    expect(cli(['apply', prefix, '-q']).status).toBe(0);
    const m = readJson(path.join(prefix, '.mambapatch', 'manifest.json'));
    const paths = m.entries.map((e: { path: string }) => e.path).sort();
    expect(paths).toEqual(['bin/.mamba.mambapatch-orig', 'bin/mamba', 'lib/libmambapatch.so']);
    const target = m.entries.find((e: { path: string }) => e.path === 'bin/mamba');
    expect(target).toMatchObject({ role: 'target', method: 'launcher', before: { mode: 0o775, uid: 4101, gid: 4100 } });
    expect(target.before.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(fs.statSync(path.join(prefix, '.mambapatch', 'backup.tar')).size).toBeGreaterThan(0);
    expect(cli(['revert', prefix, '-q']).status).toBe(0);
  });
});
