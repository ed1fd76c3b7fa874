import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { GROUP, MEMBER, OWNER, runAs } from '../helpers/users.js';
import { diff, sharedPrefix, snapshot } from './fixture.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
/** A second member of the group, who neither owns the prefix nor created the planted files. */
const OTHER = { uid: 4104, gid: GROUP };

interface Result {
  name: string;
  status: string;
  finding: string;
  fix?: string;
}

let tmp: { dir: string; cleanup: () => void };
let prefix: string;
const env = () => ({ PATH: '/usr/bin:/bin', HOME: path.join(tmp.dir, 'home'), LANG: 'C' });

function doctor(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'doctor', prefix, ...args], { encoding: 'utf8', env: env() });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
function doctorJson(...args: string[]) {
  const r = doctor('--json', ...args);
  const doc = JSON.parse(r.stdout) as { checks: Result[]; summary: { problem: number }; fix?: { commands?: string[] } };
  return { ...r, doc, by: (name: string) => doc.checks.find((c) => c.name === name)! };
}
const problems = (checks: Result[]) => checks.filter((c) => c.status === 'problem').map((c) => c.name);
const q = (rel: string) => path.join(prefix, rel);
/** Runs a fix command the way an administrator would paste it. */
const sh = (cmd: string) => expect(spawnSync('sh', ['-c', cmd], { encoding: 'utf8' }).status).toBe(0);
/** Python as another uid with a shared-install umask: the kernel decides. */
const py = (who: { uid: number; gid: number }, code: string) => runAs(who, '/usr/bin/python3', ['-c', `import os; os.umask(0o002)\n${code}`]);

describe.skipIf(missing({ root: true, tools: ['setpriv'] }))('doctor on fixture prefixes', () => {
  beforeEach(() => {
    tmp = worldTmp('doctor');
    prefix = sharedPrefix(path.join(tmp.dir, 'prefix'));
  });
  afterEach(() => tmp.cleanup());

  it('reports no problem on a clean shared prefix, exit 0', () => {
    const r = doctorJson();
    expect(problems(r.doc.checks)).toEqual([]);
    expect(r.status).toBe(0);
    for (const name of ['prefix-group', 'lock-files', 'cache-owner', 'setgid-dirs', 'sticky-cache', 'cache-files', 'patch-present']) {
      expect(r.by(name).status).toBe('ok');
    }
  });

  it('finds a 0644 lock file of another user: lock-files, with the fix that lets the group open it', () => {
    const lock = q('pkgs/cache/cache.lock');
    fs.chownSync(lock, MEMBER.uid, MEMBER.uid);
    fs.chmodSync(lock, 0o644);
    const open = `import os; os.close(os.open(${JSON.stringify(lock)}, os.O_RDWR))`;
    expect(py(OTHER, open).status).not.toBe(0);
    const r = doctorJson();
    expect(r.status).toBe(3);
    expect(problems(r.doc.checks)).toEqual(['lock-files']);
    expect(r.by('lock-files').fix).toBe(`chgrp ${GROUP} ${lock} && chmod g+w ${lock}`);
    sh(r.by('lock-files').fix!);
    expect(py(OTHER, open).status).toBe(0);
    expect(doctor().status).toBe(0);
  });

  it('finds a pkgs/cache owned by one user: cache-owner (and prefix-group), with the fix', () => {
    const cache = q('pkgs/cache');
    fs.chownSync(cache, MEMBER.uid, MEMBER.uid);
    fs.chmodSync(cache, 0o2755);
    const create = `open(${JSON.stringify(path.join(cache, 'new.json'))}, 'w').close()`;
    expect(py(OTHER, create).status).not.toBe(0);
    const r = doctorJson();
    expect(r.status).toBe(3);
    expect(problems(r.doc.checks).sort()).toEqual(['cache-owner', 'prefix-group']);
    expect(r.by('cache-owner').fix).toBe(`chgrp ${GROUP} ${cache} && chmod g+w ${cache}`);
    expect(r.by('prefix-group').fix).toBe(`chgrp ${GROUP} ${cache}`);
    sh(r.by('cache-owner').fix!);
    expect(py(OTHER, create).status).toBe(0);
    expect(doctor().status).toBe(0);
  });

  it('finds directories without setgid: setgid-dirs, with the fix', () => {
    for (const d of ['', 'pkgs', 'pkgs/cache', 'conda-meta']) fs.chmodSync(q(d), 0o775);
    // A file made by someone whose primary group is not G (here root, group 0) gets the creator's group ...
    const groupOfNewFile = (name: string) => {
      fs.writeFileSync(q(`conda-meta/${name}`), '');
      return fs.statSync(q(`conda-meta/${name}`)).gid;
    };
    expect(groupOfNewFile('before')).toBe(0);
    fs.rmSync(q('conda-meta/before'));
    const r = doctorJson();
    expect(problems(r.doc.checks)).toEqual(['setgid-dirs']);
    expect(r.by('setgid-dirs').fix).toBe(`chmod g+s ${prefix} ${q('pkgs')} ${q('pkgs/cache')} ${q('conda-meta')}`);
    sh(r.by('setgid-dirs').fix!);
    // ... and after the fix the kernel gives it the directory's group.
    expect(groupOfNewFile('after')).toBe(GROUP);
    fs.chmodSync(q('conda-meta/after'), 0o664);
    expect(doctor().status).toBe(0);
  });

  it('finds a sticky pkgs/cache: sticky-cache, with the fix that allows replacing another user\'s file', () => {
    const cache = q('pkgs/cache');
    fs.chmodSync(cache, 0o3775);
    const replace = `import os; p=${JSON.stringify(cache)}; open(p+'/t.tmp','w').close(); os.rename(p+'/t.tmp', p+'/497deca9.json')`;
    expect(py(OTHER, replace).status).not.toBe(0);
    const r = doctorJson();
    expect(problems(r.doc.checks)).toEqual(['sticky-cache']);
    expect(r.by('sticky-cache').fix).toBe(`chmod -t ${cache}`);
    sh(r.by('sticky-cache').fix!);
    expect(py(OTHER, replace).status).toBe(0);
    expect(doctor().status).toBe(0);
  });

  function plantAll(): void {
    fs.chownSync(q('pkgs/cache/cache.lock'), MEMBER.uid, MEMBER.uid);
    fs.chmodSync(q('pkgs/cache/cache.lock'), 0o644);
    fs.chownSync(q('pkgs/cache/497deca9.json'), MEMBER.uid, GROUP);
    fs.chmodSync(q('pkgs/cache/497deca9.json'), 0o644);
    fs.chownSync(q('pkgs/cache'), MEMBER.uid, MEMBER.uid);
    fs.chmodSync(q('pkgs/cache'), 0o1755);
    fs.chmodSync(q('conda-meta'), 0o775);
    fs.chmodSync(q('conda-meta/history'), 0o644);
  }

  it('--fix without --yes only prints the plan and changes nothing', () => {
    plantAll();
    const before = snapshot(prefix);
    const r = doctorJson('--fix');
    expect(r.status).toBe(0);
    expect(r.doc.fix!.commands).toContain(`chmod g+w ${q('conda-meta/history')}`);
    expect(diff(before, snapshot(prefix))).toEqual({});
    expect(doctor('--fix').stdout).toContain('--fix would run (add --yes to do it):');
  });

  it('--fix --yes leaves no problem and changes nothing but the intended modes and groups', () => {
    plantAll();
    const before = snapshot(prefix);
    const r = doctorJson('--fix', '--yes');
    expect(r.status).toBe(0);
    expect(problems(r.doc.checks)).toEqual([]);
    expect(diff(before, snapshot(prefix))).toEqual({
      'pkgs/cache': [`mode 1755->2775`, `gid ${MEMBER.uid}->${GROUP}`],
      'pkgs/cache/cache.lock': [`mode 644->664`, `gid ${MEMBER.uid}->${GROUP}`],
      'pkgs/cache/497deca9.json': ['mode 644->664'],
      'conda-meta': ['mode 775->2775'],
      'conda-meta/history': ['mode 644->664'],
    });
    expect(doctor('--fix', '--yes').stdout).toContain('no safe permission fix to make');
  });

  it('--fix --yes as the prefix owner fixes its own files and names those only root can change', () => {
    plantAll();
    const r = runAs(OWNER, process.execPath, [CLI, 'doctor', prefix, '--fix', '--yes'], { env: env() });
    expect(r.status).toBe(3);
    expect(r.stdout).toMatch(/skipped +chgrp 4100 .*cache\.lock \(owned by uid 4102: only root or its owner can change it\)/);
    expect(r.stdout).toMatch(/done +chmod g\+ws? .*conda-meta\b/);
    expect(fs.statSync(q('conda-meta/history')).mode & 0o777).toBe(0o664);
  });

  it('--fix --yes by someone else is a one-line error, exit 1, nothing changed', () => {
    plantAll();
    const before = snapshot(prefix);
    const r = runAs(OTHER, process.execPath, [CLI, 'doctor', prefix, '--fix', '--yes'], { env: env() });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`mambapatch: ${prefix}: only the prefix owner (uid ${OWNER.uid}) or root may fix its permissions; you are uid ${OTHER.uid}\n`);
    expect(diff(before, snapshot(prefix))).toEqual({});
  });

  it.skipIf(missing({ tools: ['getfacl', 'setfacl'] }))('default-acl: warns under umask 022 without default ACLs; its fix makes new files group-writable', () => {
    const withUmask = (mask: string) => {
      const r = spawnSync('sh', ['-c', `umask ${mask}; exec "$@"`, 'sh', process.execPath, CLI, 'doctor', prefix, '--json'], { encoding: 'utf8', env: env() });
      return (JSON.parse(r.stdout) as { checks: Result[] }).checks.find((c) => c.name === 'default-acl')!;
    };
    expect(withUmask('002').status).toBe('ok');
    const acl = withUmask('022');
    expect(acl.status).toBe('warning');
    expect(acl.fix).toBe(`setfacl -d -m u::rwx,g::rwx,o::rx ${q('pkgs')} ${q('pkgs/cache')} ${q('conda-meta')}`);
    const create = (name: string) =>
      runAs(OTHER, '/usr/bin/python3', ['-c', `import os; os.umask(0o022); open(${JSON.stringify(q(`pkgs/cache/${name}`))}, 'w').close()`]);
    expect(create('before.json').status).toBe(0);
    expect(fs.statSync(q('pkgs/cache/before.json')).mode & 0o777).toBe(0o644);
    sh(acl.fix!);
    expect(create('after.json').status).toBe(0);
    expect(fs.statSync(q('pkgs/cache/after.json')).mode & 0o777).toBe(0o664);
    expect(withUmask('022')).toMatchObject({ status: 'ok', finding: 'default ACLs give the group write on new files' });
  });

  it('reports pkgs_dirs from the prefix .condarc, and a shared cache the group cannot write', () => {
    const shared = path.join(tmp.dir, 'shared-pkgs');
    fs.mkdirSync(shared, { mode: 0o755 });
    fs.writeFileSync(q('.condarc'), `channels:\n  - conda-forge\npkgs_dirs:\n  - ~/.conda/pkgs\n  - "${shared}"  # shared\n`);
    const r = doctorJson();
    expect(r.by('pkgs-dirs-config').status).toBe('warning');
    expect(r.by('pkgs-dirs-config').fix).toBe(`chmod g+ws ${shared}`);
    expect(r.by('pkgs-dirs-config').finding).toContain('~/.conda/pkgs');
  });

  it('a check that throws is reported as a failed check; the others still run', async () => {
    const { runDoctor, CHECKS } = await import(new URL('../../dist/src/doctor/index.js', import.meta.url).href);
    const boom = { name: 'boom', description: 'always throws', run: () => { throw new Error('kaput\nsecond line'); } };
    const report = await runDoctor(prefix, { checks: [boom, ...CHECKS], env: env() });
    expect(report.checks[0]).toMatchObject({ name: 'boom', status: 'problem', finding: 'check failed: kaput' });
    expect(report.checks).toHaveLength(CHECKS.length + 1);
    expect(report.summary.problem).toBe(1);
  });
});

describe('doctor usage', () => {
  it('--list names every check with a description', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '--list', '--json'], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const names = (JSON.parse(r.stdout) as { checks: { name: string; description: string }[] }).checks.map((c) => c.name);
    for (const n of ['prefix-group', 'prefix-group-write', 'pkgs-writable', 'cache-owner', 'setgid-dirs', 'sticky-cache', 'lock-files', 'cache-files', 'conda-meta-writable', 'default-acl', 'umask', 'pkgs-dirs-config', 'patch-present', 'conda-doctor-altered']) {
      expect(names).toContain(n);
    }
  });
  it('--yes without --fix is a usage error, exit 2', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '/proc/self', '--yes'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('mambapatch: --yes goes with --fix\n');
  });
  it('a directory that is not a prefix is a one-line error, exit 1', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '/proc/self'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('mambapatch: /proc/self: not a conda prefix (no conda-meta/)\n');
  });
});
