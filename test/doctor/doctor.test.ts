import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { GROUP, MEMBER, OWNER, runAs } from '../helpers/users.js';
import { diff, memberEnv, memberPackage, sharedPrefix, snapshot } from './fixture.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
/** A second member of the group, who neither owns the prefix nor created the planted files. */
const OTHER = { uid: 4104, gid: GROUP };

interface Result {
  name: string;
  status: string;
  finding: string;
  fix?: string;
  actions?: unknown[];
  details?: string[];
}

let tmp: { dir: string; cleanup: () => void };
let prefix: string;
const env = () => ({ PATH: '/usr/bin:/bin', HOME: path.join(tmp.dir, 'home'), LANG: 'C' });

function doctor(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, 'doctor', prefix, ...args], { encoding: 'utf8', env: env() });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
/** doctor --json as root; doctorJsonAs: as `who` (a second group member) with `home` as HOME. */
function doctorJson(...args: string[]) {
  return parsed(doctor('--json', ...args));
}
function doctorJsonAs(who: { uid: number; gid: number }, home = env().HOME, ...args: string[]) {
  return parsed(runAs(who, process.execPath, [CLI, 'doctor', prefix, '--json', ...args], { env: { ...env(), HOME: home } }));
}
function parsed(r: { status: number | null; stdout: string; stderr: string }) {
  const doc = JSON.parse(r.stdout) as { checks: Result[]; summary: { problem: number }; fix?: { commands?: string[] } };
  return { ...r, doc, by: (name: string) => doc.checks.find((c) => c.name === name)! };
}
/** Every check this suite knows, in report order. */
const CHECK_NAMES = [
  'conda-meta-present', 'prefix-group', 'prefix-group-write', 'pkgs-writable', 'cache-owner', 'conda-meta-writable', 'setgid-dirs', 'sticky-cache',
  'lock-files', 'cache-files', 'envs-writable', 'hardlinks', 'private-cache', 'default-acl', 'umask', 'pkgs-dirs-config', 'patch-present', 'conda-doctor-altered',
];
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
    for (const name of ['prefix-group', 'lock-files', 'cache-owner', 'setgid-dirs', 'sticky-cache', 'cache-files', 'patch-present', 'conda-meta-present', 'envs-writable', 'hardlinks', 'private-cache']) {
      expect(r.by(name).status).toBe('ok');
    }
    expect(r.by('envs-writable').finding).toBe('1 environment(s) group-writable: envs/clean');
    expect(r.by('hardlinks').finding).toMatch(/^fs\.protected_hardlinks = 0: |^fs\.protected_hardlinks = 1; the 1 package\(s\) in pkgs\/ are group read\+writable/);
    // The same verdicts for a second member who owns nothing here, run as runAs does by default: no HOME, and
    // no passwd entry for the uid, so no home directory at all.
    const other = parsed(runAs(OTHER, process.execPath, [CLI, 'doctor', prefix, '--json']));
    expect(problems(other.doc.checks)).toEqual([]);
    expect(other.by('private-cache')).toMatchObject({
      status: 'ok',
      finding: `pkgs/ and pkgs/cache are writable for you (uid ${OTHER.uid}); no home directory (HOME unset, no passwd entry): no private cache to look for`,
    });
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

  /** What the kernel lets OTHER do in environment `env`: open its lock file for writing, create a directory. */
  const envAccess = (envDir: string) => ({
    lock: py(OTHER, `import os; os.close(os.open(${JSON.stringify(path.join(envDir, 'conda-meta/conda-meta.lock'))}, os.O_RDWR))`).status === 0,
    mkdir: py(OTHER, `import os; os.mkdir(${JSON.stringify(path.join(envDir, 'share/hello-two'))})`).status === 0,
  });

  it('envs-writable: an environment another member created under umask 022, found (also by a second member), its fix lets the group install', () => {
    const a = q('envs/a');
    memberEnv(a, MEMBER, 0o022, ['hello-1.0-0'], 25);
    // What mamba hit: "Could not open lockfile", "cannot create directories: Permission denied".
    expect(envAccess(a)).toEqual({ lock: false, mkdir: false });
    const r = doctorJson();
    expect(r.status).toBe(3);
    expect(problems(r.doc.checks)).toEqual(['envs-writable']);
    const e = r.by('envs-writable');
    const lock = q('envs/a/conda-meta/conda-meta.lock');
    const history = q('envs/a/conda-meta/history');
    expect(e.finding).toBe(
      `the group ${GROUP} cannot write 1 environment(s): envs/a (owner uid ${MEMBER.uid}: 20 and more director(ies) without group write or setgid, ` +
        `e.g. envs/a (uid ${MEMBER.uid}, group ${GROUP}, 2755); envs/a/conda-meta/conda-meta.lock (uid ${MEMBER.uid}, group ${GROUP}, 0644), ` +
        `envs/a/conda-meta/history (uid ${MEMBER.uid}, group ${GROUP}, 0644)) (files of uid ${MEMBER.uid}: the fix needs root or their owner)`,
    );
    expect(e.fix).toBe(`chmod g+w ${lock} ${history} && find ${a} -type d ! -group ${GROUP} -exec chgrp ${GROUP} {} + && find ${a} -type d ! -perm -2070 -exec chmod g+rwxs {} +`);
    expect(e.details).toContain('envs/a: and more (the walk stopped after 20 directories)');
    expect(doctorJsonAs(OTHER).by('envs-writable')).toEqual(e);
    sh(e.fix!);
    expect(envAccess(a)).toEqual({ lock: true, mkdir: true });
    expect(doctor().status).toBe(0);
  });

  it('envs-writable: --fix --yes changes only the environment\'s directories and files; as the prefix owner it lists those of another member as skipped', () => {
    memberEnv(q('envs/a'), MEMBER, 0o022);
    const before = snapshot(prefix);
    const owner = runAs(OWNER, process.execPath, [CLI, 'doctor', prefix, '--fix', '--yes'], { env: env() });
    expect(owner.status).toBe(3);
    expect(owner.stdout).toMatch(/skipped +find .*envs\/a -type d .* \(5 director\(ies\) of other users left alone \(only root or their owner can change them\): .*envs\/a \(uid 4102\), .*envs\/a\/bin \(uid 4102\), .*envs\/a\/conda-meta \(uid 4102\), and 2 more\)/);
    expect(diff(before, snapshot(prefix))).toEqual({});
    expect(doctorJson('--fix', '--yes').status).toBe(0);
    const dir = ['mode 2755->2775'];
    expect(diff(before, snapshot(prefix))).toEqual({
      'envs/a': dir,
      'envs/a/bin': dir,
      'envs/a/conda-meta': dir,
      'envs/a/lib': dir,
      'envs/a/share': dir,
      'envs/a/conda-meta/conda-meta.lock': ['mode 644->664'],
      'envs/a/conda-meta/history': ['mode 644->664'],
    });
    expect(envAccess(q('envs/a'))).toEqual({ lock: true, mkdir: true });
  });

  it('envs-writable: an environment marked private (.mambapatch-private) is reported as private, not as a problem; envs_dirs from the prefix .condarc are checked too', () => {
    memberEnv(q('envs/a'), MEMBER, 0o022);
    fs.writeFileSync(q('envs/a/.mambapatch-private'), '');
    const shared = path.join(tmp.dir, 'shared-envs');
    fs.mkdirSync(shared);
    fs.chownSync(shared, OWNER.uid, GROUP);
    fs.chmodSync(shared, 0o2775);
    memberEnv(path.join(shared, 'b'), MEMBER, 0o002);
    fs.writeFileSync(q('.condarc'), `envs_dirs:\n  - ~/.conda/envs\n  - ${shared}\n`);
    let r = doctorJson();
    expect(r.by('envs-writable')).toMatchObject({
      status: 'ok',
      finding: `2 environment(s) group-writable: envs/clean, ${shared}/b; private on purpose (.mambapatch-private): envs/a`,
    });
    expect(r.status).toBe(0);
    // An unmarked environment of one member in the shared envs_dirs is found, named by its absolute path.
    memberEnv(path.join(shared, 'c'), MEMBER, 0o022);
    r = doctorJson();
    expect(r.by('envs-writable').status).toBe('problem');
    expect(r.by('envs-writable').finding).toMatch(new RegExp(`^the group ${GROUP} cannot write 1 environment\\(s\\): ${shared}/c \\(owner uid ${MEMBER.uid}: 5 director`));
    expect(r.by('envs-writable').finding).toMatch(/; private on purpose \(\.mambapatch-private\): envs\/a$/);
  });

  it('envs-writable: an environment that is a symlink to a directory elsewhere is checked, and fixed, where it points', () => {
    const elsewhere = path.join(tmp.dir, 'elsewhere');
    fs.mkdirSync(elsewhere);
    fs.chownSync(elsewhere, MEMBER.uid, GROUP);
    memberEnv(path.join(elsewhere, 'd'), MEMBER, 0o022);
    fs.symlinkSync(path.join(elsewhere, 'd'), q('envs/d'));
    expect(envAccess(q('envs/d'))).toEqual({ lock: false, mkdir: false });
    const e = doctorJson().by('envs-writable');
    expect(e.finding).toMatch(new RegExp(`^the group ${GROUP} cannot write 1 environment\\(s\\): envs/d \\(owner uid ${MEMBER.uid}: 5 director\\(ies\\) without group write or setgid, e\\.g\\. ${elsewhere}/d \\(uid`));
    expect(e.fix).toContain(`find ${elsewhere}/d -type d ! -perm -2070 -exec chmod g+rwxs {} +`);
    sh(e.fix!);
    expect(envAccess(q('envs/d'))).toEqual({ lock: true, mkdir: true });
    expect(doctorJson().by('envs-writable').status).toBe('ok');
  });

  it('hardlinks: package files 0644 of another member: a warning with the cost iff the kernel protects hard links; way out 1 lets the others link', () => {
    const setting = Number(fs.readFileSync('/proc/sys/fs/protected_hardlinks', 'utf8').trim());
    memberPackage(q('pkgs'), 'hello-2.0-0', MEMBER, 1 << 20);
    memberEnv(q('envs/b'), OTHER, 0o002, ['hello-2.0-0']);
    const lib = q('pkgs/hello-2.0-0/lib/libhello.so');
    const link = (n: number) => py(OTHER, `import os; os.link(${JSON.stringify(lib)}, ${JSON.stringify(q(`envs/b/lib/libhello-${n}.so`))})`).status === 0;
    // The kernel decides: OTHER may link MEMBER's 0644 file iff fs.protected_hardlinks = 0.
    expect(link(1)).toBe(setting === 0);
    const r = doctorJson();
    const h = r.by('hardlinks');
    expect(h.actions).toBeUndefined();
    expect(r.status).toBe(0);
    if (setting === 0) {
      expect(h).toMatchObject({ status: 'ok', finding: 'fs.protected_hardlinks = 0: every member can hard-link the package files' });
      return;
    }
    expect(h.status).toBe('warning');
    expect(h.finding).toBe(
      `fs.protected_hardlinks = 1 and 1 of 2 package(s) in pkgs/ are not group read+writable (e.g. pkgs/hello-2.0-0/bin/hello (uid ${MEMBER.uid}, group ${GROUP}, 0755)): ` +
        'environments of members other than the one who extracted them get copies, not hard links: about 1.0 MiB of copies now in 1 of 3 environment(s), up to 1.0 MiB for each new one; ' +
        'ways out (not automated): group-writable package files (fix below; any member can then change files every environment shares) or `sysctl -w fs.protected_hardlinks=0` (a system-wide hardening loss)',
    );
    const p = q('pkgs');
    expect(h.fix).toBe(`find ${p} -mindepth 2 -type f ! -group ${GROUP} -exec chgrp ${GROUP} {} + && find ${p} -mindepth 2 -type f ! -perm -g+rw -exec chmod g+rw {} +`);
    expect(h.details![1]).toMatch(/^way out 2: sysctl -w fs\.protected_hardlinks=0 && /);
    expect(doctorJson('--fix').doc.fix!.commands).toEqual([]);
    // The same verdict for the member who gets the copies.
    expect(doctorJsonAs(OTHER).by('hardlinks')).toEqual(h);
    sh(h.fix!);
    expect(link(2)).toBe(true);
    expect(doctorJson().by('hardlinks').status).toBe('ok');
  });

  it('private-cache: for the member running doctor, pkgs/cache they cannot write, the private cache it leaves in their home, and the "Is a directory" entry', () => {
    const home = path.join(tmp.dir, 'home-other');
    fs.mkdirSync(home);
    fs.chownSync(home, OTHER.uid, OTHER.gid);
    const cache = q('pkgs/cache');
    fs.chownSync(cache, MEMBER.uid, GROUP);
    fs.chmodSync(cache, 0o2755);
    const stateJson = path.join(home, '.mamba/pkgs/cache/497deca9.state.json');
    const mk = (code: string) => expect(py(OTHER, code).status).toBe(0);
    mk(`import os; os.makedirs(${JSON.stringify(stateJson)})`);
    // The kernel: OTHER cannot write the shared cache, and the private one fails as mamba did.
    expect(py(OTHER, `open(${JSON.stringify(path.join(cache, 'x.json'))}, 'w')`).status).not.toBe(0);
    expect(py(OTHER, `open(${JSON.stringify(stateJson)}, 'w')`).stderr).toContain('IsADirectoryError');

    let r = doctorJsonAs(OTHER, home);
    expect(r.status).toBe(3);
    expect(r.by('private-cache')).toMatchObject({
      status: 'problem',
      finding:
        `${cache} is not writable for you (uid ${OTHER.uid}): its group ${GROUP} lacks write (uid ${MEMBER.uid}, 2755); mamba falls back to a private cache in ${home}/.mamba/pkgs ` +
        `(conda: ${home}/.conda/pkgs), so your downloads are not shared; private cache(s) already there: ${home}/.mamba/pkgs/cache; ` +
        `and it will fail: ${stateJson} is a directory where mamba writes a file ("Is a directory")`,
      fix: `chmod g+w ${cache} && rm -rf ${home}/.mamba/pkgs/cache`,
    });
    // Root, with a home of its own, is not that member: no finding for it.
    expect(doctorJson().by('private-cache').status).toBe('ok');
    sh(`chmod g+w ${cache}`);
    expect(py(OTHER, `open(${JSON.stringify(path.join(cache, 'x.json'))}, 'w')`).status).toBe(0);
    r = doctorJsonAs(OTHER, home);
    expect(r.by('private-cache')).toMatchObject({ status: 'problem', fix: `rm -rf ${home}/.mamba/pkgs/cache` });
    expect(r.by('private-cache').finding).toContain(`your private cache has directories where mamba writes files: ${stateJson}`);
    expect(runAs(OTHER, 'sh', ['-c', r.by('private-cache').fix!]).status).toBe(0);
    mk(`import os; os.makedirs(${JSON.stringify(path.join(home, '.conda/pkgs/hello-2.0-0'))})`);
    r = doctorJsonAs(OTHER, home);
    expect(r.by('private-cache')).toMatchObject({ status: 'warning', fix: `rm -rf ${home}/.conda/pkgs` });
    expect(runAs(OTHER, 'sh', ['-c', r.by('private-cache').fix!]).status).toBe(0);
    expect(doctorJsonAs(OTHER, home).by('private-cache').status).toBe('ok');
  });

  it('conda-meta-present: a prefix without conda-meta/ gets every other check and one finding naming the missing records, as root and as a second member', () => {
    fs.rmSync(q('conda-meta'), { recursive: true });
    const missing = `no conda-meta/ in ${prefix}: no package records, so neither mamba nor mambapatch can tell which packages (or mamba version) it holds`;
    for (const r of [doctorJson(), doctorJsonAs(OTHER)]) {
      expect(r.status).toBe(3);
      expect(r.doc.checks.map((c) => c.name)).toEqual(expect.arrayContaining(CHECK_NAMES));
      expect(problems(r.doc.checks)).toEqual(['conda-meta-present']);
      expect(r.by('conda-meta-present').finding).toBe(`${missing}, yet bin/ holds installed files: the records are lost (restore conda-meta/ from a backup, or reinstall)`);
      expect(r.by('conda-meta-writable').finding).toBe('nothing to check (conda-meta/ absent)');
    }
    // A root prefix with only pkgs/ and envs/ (micromamba's) is expected to have none: a warning, exit 0.
    fs.rmSync(q('bin'), { recursive: true });
    fs.rmSync(q('lib'), { recursive: true });
    const r = doctorJsonAs(OTHER);
    expect(r.status).toBe(0);
    expect(r.by('conda-meta-present')).toMatchObject({ status: 'warning', finding: `${missing}; expected for a root prefix that holds only pkgs/ and envs/ (micromamba)` });
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
    for (const n of CHECK_NAMES) expect(names).toContain(n);
  });
  it('--yes without --fix is a usage error, exit 2', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '/proc/self', '--yes'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('mambapatch: --yes goes with --fix\n');
  });
  it('a directory that is not a prefix is a one-line error, exit 1', () => {
    const r = spawnSync(process.execPath, [CLI, 'doctor', '/proc/self'], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('mambapatch: /proc/self: not a conda prefix (none of conda-meta, pkgs, envs, condabin, bin/mamba, bin/micromamba, bin/conda)\n');
  });
});
