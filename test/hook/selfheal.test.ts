/**
 * End to end on fixture prefixes (issue 4's apply, issue 3's shim): the printed hook script re-applies the
 * fix with only PATH=/usr/bin:/bin; after `hook install`, a patched stand-in that replaces its own bin/mamba
 * (as `mamba update mamba` does) leaves the prefix patched again when it exits, exactly once; doctor sees
 * the patch and what conda doctor will say about it. Everything runs as the prefix owner.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { buildStandIns } from '../../src/demo/prefix.js';
import { cachedBuild } from '../helpers/build.js';
import { missing } from '../helpers/env.js';
import { OWNER, runAs } from '../helpers/users.js';
import { makePrefix, memberInstall, snapshot, type Fixture } from '../fixtures/prefix.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

const needs = missing({ root: true, tools: ['g++', 'setpriv'] });

let fixture: Fixture | undefined;
afterEach(() => fixture?.cleanup());

const ENV = { PATH: '/usr/bin:/bin', LANG: 'C', HOME: '/tmp', NO_COLOR: '1' };
const asOwner = (cmd: string, args: string[], env: NodeJS.ProcessEnv = {}) => runAs(OWNER, cmd, args, { env: { ...ENV, ...env } });
const mp = (...args: string[]) => asOwner(process.execPath, [CLI, ...args]);
/** What `mamba update mamba` does to bin/mamba: a new file renamed over it. */
const update = (from: string, to: string) => asOwner('/bin/sh', ['-c', 'cp "$1" "$2.new" && chmod 775 "$2.new" && mv "$2.new" "$2"', 'sh', from, to]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function ownedFile(file: string, text = ''): string {
  fs.writeFileSync(file, text);
  fs.chownSync(file, OWNER.uid, OWNER.gid);
  return file;
}

describe.skipIf(needs)('hook script on a patched prefix', () => {
  it('re-applies the fix with only PATH=/usr/bin:/bin, quietly, and is idempotent', () => {
    fixture = makePrefix('hook-script', { mamba2: true });
    const { prefix, dir } = fixture;
    const mamba = path.join(prefix, 'bin/mamba');
    expect(mp('apply', prefix, '--quiet').status).toBe(0);
    update(path.join(prefix, 'pkgs/mamba-2.3.0-h0_0/bin/mamba'), mamba);
    expect(mp('status', prefix, '--check').status).toBe(3);
    expect(memberInstall(prefix).status).toBe(1);

    const script = ownedFile(path.join(dir, 'reapply.sh'), mp('hook', 'script', prefix).stdout);
    const first = runAs(OWNER, '/bin/sh', [script], { env: { PATH: '/usr/bin:/bin' } });
    expect(first).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(mp('status', prefix, '--check').status).toBe(0);
    const r = memberInstall(prefix);
    expect(r.stdout).toContain('mamba 2.x stand-in: install finished');
    expect(r.status).toBe(0);

    const patched = snapshot(prefix);
    expect(runAs(OWNER, '/bin/sh', [script], { env: { PATH: '/usr/bin:/bin' } })).toEqual({ status: 0, stdout: '', stderr: '' });
    expect(snapshot(prefix)).toEqual(patched);
  });

  it('doctor: patch-present follows status --check; conda-doctor-altered names the patched file', () => {
    fixture = makePrefix('hook-doctor', { mamba2: true });
    const { prefix } = fixture;
    const mamba = path.join(prefix, 'bin/mamba');
    const pristine = path.join(prefix, 'pkgs/mamba-2.3.0-h0_0/bin/mamba');
    // conda records each file's sha256 in paths_data: the file conda doctor compares against.
    const rec = path.join(prefix, 'conda-meta/mamba-2.3.0-h0_0.json');
    const meta = JSON.parse(fs.readFileSync(rec, 'utf8'));
    meta.paths_data = { paths_version: 1, paths: [{ _path: 'bin/mamba', path_type: 'hardlink', sha256: createHash('sha256').update(fs.readFileSync(mamba)).digest('hex') }] };
    fs.writeFileSync(rec, JSON.stringify(meta));
    const doctor = () => {
      const r = mp('doctor', prefix, '--json');
      const doc = JSON.parse(r.stdout) as { checks: { name: string; status: string; finding: string; fix?: string }[] };
      return { status: r.status, by: (n: string) => doc.checks.find((c) => c.name === n)! };
    };
    let d = doctor();
    expect(d.by('patch-present')).toMatchObject({ status: 'problem', fix: `mambapatch apply ${prefix}` });
    expect(d.by('conda-doctor-altered').status).toBe('ok');
    expect(d.status).toBe(3);

    expect(mp('apply', prefix, '--quiet').status).toBe(0);
    d = doctor();
    expect(d.by('patch-present').status).toBe('ok');
    expect(d.by('conda-doctor-altered').status).toBe('warning');
    expect(d.by('conda-doctor-altered').finding).toContain('bin/mamba (mamba-2.3.0)');
    expect(d.status).toBe(0);

    update(pristine, mamba);
    d = doctor();
    expect(d.by('patch-present').status).toBe('problem');
    expect(d.by('conda-doctor-altered').status).toBe('ok');
  });
});

describe.skipIf(needs)('self-heal after a mamba update', () => {
  it('re-applies exactly once when the patched file was replaced, never otherwise, exit status unchanged', async () => {
    fixture = makePrefix('hook-selfheal', { mamba2: true });
    const { prefix, dir } = fixture;
    const mamba = path.join(prefix, 'bin/mamba');
    // bin/mamba becomes a stand-in that can update itself (written through the pkgs/ hard link, like the
    // package it came from).
    const { libmamba2 } = buildStandIns((req) => cachedBuild({ ...req, compiler: 'g++' }));
    const updater = cachedBuild({
      name: 'mamba',
      compiler: 'g++',
      args: ['-std=c++17', '-O1', '-Wl,-rpath,$ORIGIN/../lib'],
      sources: [fileURLToPath(new URL('./updater_main.cpp', import.meta.url)), libmamba2],
    });
    fs.copyFileSync(updater, mamba);
    fs.chmodSync(mamba, 0o775);
    const release = path.join(dir, 'mamba-new');
    fs.copyFileSync(updater, release);
    fs.chmodSync(release, 0o755);

    expect(mp('apply', prefix, '--quiet').status).toBe(0);
    const inst = mp('hook', 'install', prefix);
    expect(inst.status, inst.stderr).toBe(0);
    const status = JSON.parse(mp('hook', 'status', prefix, '--json').stdout);
    expect(status.hook).toMatchObject({ installed: true, trusted: true, current: true });
    expect(status.watch.files).toContainEqual({ path: mamba, exists: true });

    // Count the hook's runs: one line per run, added after the marker (the rest is the real hook).
    const runs = ownedFile(path.join(dir, 'hook-runs'));
    const hook = path.join(prefix, '.mambapatch/hook.sh');
    const lines = fs.readFileSync(hook, 'utf8').split('\n');
    lines.splice(2, 0, `echo run >> '${runs}'`);
    fs.writeFileSync(hook, lines.join('\n'));
    const count = () => fs.readFileSync(runs, 'utf8').split('\n').filter(Boolean).length;

    // No replacement: the hook never runs.
    let r = asOwner(mamba, [], { STANDIN_EXIT: '5' });
    expect(r.status).toBe(5);
    await sleep(1500);
    expect(count()).toBe(0);

    // The process updates its own bin/mamba: at exit the hook re-applies, once; the exit status stays.
    // It has run by the time the process is gone, and said so in one line on stderr (apply is quiet).
    r = asOwner(mamba, [], { STANDIN_UPDATE_FROM: release, STANDIN_EXIT: '7' });
    expect(r.stdout).toContain('stand-in: updated bin/mamba');
    expect(r.status).toBe(7);
    expect(count()).toBe(1);
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`${mamba} was replaced`);
    expect(mp('status', prefix, '--check').status).toBe(0);
    await sleep(1000);
    expect(count()).toBe(1);
    const m = memberInstall(prefix);
    expect(m.stdout).toContain('mamba 2.x stand-in: install finished');

    // MAMBAPATCH_NO_HOOK=1: replaced, but no hook; the fix stays missing until someone applies.
    r = asOwner(mamba, [], { STANDIN_UPDATE_FROM: release, MAMBAPATCH_NO_HOOK: '1' });
    expect(r.status).toBe(0);
    await sleep(1500);
    expect(count()).toBe(1);
    expect(mp('status', prefix, '--check').status).toBe(3);
  });
});
