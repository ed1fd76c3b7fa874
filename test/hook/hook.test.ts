import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { MEMBER, runAs } from '../helpers/users.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const dist = (m: string) => import(new URL(`../../dist/src/${m}`, import.meta.url).href);
const run = (args: string[], env: NodeJS.ProcessEnv = { PATH: '/usr/bin:/bin', HOME: '/nonexistent' }) =>
  spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });

let tmp: { dir: string; cleanup: () => void };
beforeEach(() => {
  tmp = worldTmp('hook');
});
afterEach(() => tmp.cleanup());

/** A prefix that apply has patched, as far as the hook is concerned: a state dir with a watch file. */
function fakePatched(name: string): string {
  const prefix = path.join(tmp.dir, name);
  fs.mkdirSync(path.join(prefix, 'conda-meta'), { recursive: true });
  fs.mkdirSync(path.join(prefix, '.mambapatch'), { mode: 0o755 });
  fs.writeFileSync(path.join(prefix, '.mambapatch', 'watch'), `${prefix}/bin/mamba\n`, { mode: 0o644 });
  return prefix;
}

describe('hook script', () => {
  it('prints a POSIX sh script with every path a single-quoted literal; sh -n accepts it', () => {
    const prefix = path.join(tmp.dir, "it's a $prefix `x`");
    fs.mkdirSync(prefix);
    const r = run(['hook', 'script', prefix]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.startsWith('#!/bin/sh\n# mambapatch-hook 1\n')).toBe(true);
    expect(r.stdout).toContain(`node='${process.execPath}'\n`);
    expect(r.stdout).toContain(`cli='${fs.realpathSync(CLI)}'\n`);
    expect(r.stdout).toContain(`prefix='${prefix.replace(/'/g, `'\\''`)}'\n`);
    expect(r.stdout).toContain('exec "$node" "$cli" apply "$prefix" --quiet\n');
    const file = path.join(tmp.dir, 'hook.sh');
    fs.writeFileSync(file, r.stdout);
    expect(spawnSync('sh', ['-n', file]).status).toBe(0);
    // The shell reads the prefix back exactly.
    const echoed = spawnSync('sh', ['-c', `eval "$(grep '^prefix=' "$1")"; printf %s "$prefix"`, 'sh', file], { encoding: 'utf8' });
    expect(echoed.stdout).toBe(prefix);
  });

  it('with mambapatch gone, says so in one line on stderr and exits 0', async () => {
    const { hookScript } = await dist('hook/script.js');
    const file = path.join(tmp.dir, 'hook.sh');
    fs.writeFileSync(file, hookScript('/opt/conda', { cli: '/nonexistent/dist/src/cli.js' }));
    const r = spawnSync('env', ['-i', 'PATH=/usr/bin:/bin', 'sh', file], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('mambapatch hook: mambapatch is no longer installed (/nonexistent/dist/src/cli.js); not re-applying the fix to /opt/conda\n');
  });

  it('--json carries the same script', () => {
    const prefix = fakePatched('p');
    const r = run(['hook', 'script', prefix, '--json']);
    expect(JSON.parse(r.stdout)).toEqual({ ok: true, prefix, script: run(['hook', 'script', prefix]).stdout });
  });
});

describe('hook install / uninstall / status', () => {
  it('refuses a prefix mambapatch has not patched, exit 1, nothing written', () => {
    const prefix = path.join(tmp.dir, 'plain');
    fs.mkdirSync(path.join(prefix, 'conda-meta'), { recursive: true });
    const r = run(['hook', 'install', prefix]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`mambapatch: ${prefix}: not patched by mambapatch (no .mambapatch/watch); run \`mambapatch apply '${prefix}'\` first\n`);
    expect(fs.readdirSync(prefix)).toEqual(['conda-meta']);
  });

  it('refuses a state directory others can write (the shim would not trust the hook)', () => {
    const prefix = fakePatched('loose');
    fs.chmodSync(path.join(prefix, '.mambapatch'), 0o777);
    const r = run(['hook', 'install', prefix]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('mode 0777');
    expect(fs.existsSync(path.join(prefix, '.mambapatch', 'hook.sh'))).toBe(false);
  });

  it.skipIf(missing({ root: true, tools: ['setpriv'] }))('refuses, as a one-line error, a user who cannot write the state directory', () => {
    const prefix = fakePatched('theirs');
    const r = runAs(MEMBER, process.execPath, [CLI, 'hook', 'install', prefix]);
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`mambapatch: ${prefix}/.mambapatch: cannot write the state directory (owned by uid 0): run this as its owner or root\n`);
  });

  it('writes hook.sh (0755, the printed script), is idempotent, reports status, and uninstalls', () => {
    const prefix = fakePatched('p');
    const hook = path.join(prefix, '.mambapatch', 'hook.sh');
    const first = run(['hook', 'install', prefix]);
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout).toBe(`installed ${hook}\n`);
    expect(fs.readFileSync(hook, 'utf8')).toBe(run(['hook', 'script', prefix]).stdout);
    const st = fs.statSync(hook);
    expect(st.mode & 0o7777).toBe(0o755);
    expect(st.uid).toBe(process.getuid!());
    const mtime = st.mtimeMs;
    expect(run(['hook', 'install', prefix]).stdout).toBe(`already installed: ${hook}\n`);
    expect(fs.statSync(hook).mtimeMs).toBe(mtime);

    const s = JSON.parse(run(['hook', 'status', prefix, '--json', '--unit-dir', tmp.dir]).stdout);
    expect(s.hook).toMatchObject({ path: hook, installed: true, ours: true, current: true, mode: '0755', trusted: false });
    expect(s.hook.why).toContain('no shim');
    expect(s.watch).toEqual({ path: path.join(prefix, '.mambapatch', 'watch'), present: true, files: [{ path: `${prefix}/bin/mamba`, exists: false }] });
    expect(s.systemd.units.map((u: { present: boolean }) => u.present)).toEqual([false, false]);

    // The shim's trust rule: root-owned, shim present, not group/other-writable.
    fs.mkdirSync(path.join(prefix, 'lib'));
    fs.writeFileSync(path.join(prefix, 'lib', 'libmambapatch.so'), '');
    expect(JSON.parse(run(['hook', 'status', prefix, '--json']).stdout).hook.trusted).toBe(true);
    fs.chmodSync(hook, 0o775);
    const loose = JSON.parse(run(['hook', 'status', prefix, '--json']).stdout).hook;
    expect(loose).toMatchObject({ trusted: false, why: 'hook.sh is writable by group or others (mode 0775)' });

    const u = run(['hook', 'uninstall', prefix]);
    expect(u.status).toBe(0);
    expect(u.stdout).toBe(`removed ${hook}\n`);
    expect(fs.existsSync(hook)).toBe(false);
    expect(run(['hook', 'uninstall', prefix]).stdout).toBe('nothing to remove\n');
  });
});

describe('systemd units', () => {
  it('names units exactly as systemd-escape --path does', async () => {
    const { systemdEscapePath } = await dist('hook/systemd.js');
    for (const p of ['/opt/miniforge3', '/tmp/a b/-x/.y/é%', '/', '//a//b/./c/', '/srv/conda_env:1.2', '/.hidden/x', '/a\\b']) {
      const want = execFileSync('systemd-escape', ['--path', p], { encoding: 'utf8' }).trim();
      expect(systemdEscapePath(p), p).toBe(want);
    }
  });

  it.skipIf(missing({ tools: ['systemd-analyze', 'systemd-escape'] }))(
    'install --systemd writes a .path and a .service that pass systemd-analyze verify; uninstall --systemd removes them',
    () => {
      const prefix = fakePatched('my conda-2%');
      const units = path.join(tmp.dir, 'units');
      fs.mkdirSync(units);
      const esc = execFileSync('systemd-escape', ['--path', prefix], { encoding: 'utf8' }).trim();
      const r = run(['hook', 'install', '--systemd', '--unit-dir', units, prefix]);
      expect(r.status, r.stderr).toBe(0);
      const pathUnit = path.join(units, `mambapatch-${esc}.path`);
      const serviceUnit = path.join(units, `mambapatch-${esc}.service`);
      expect(r.stdout).toContain(`wrote ${pathUnit}\n`);
      expect(r.stdout).toContain(`to activate: systemctl daemon-reload && systemctl enable --now 'mambapatch-${esc}.path'\n`);
      const p = fs.readFileSync(pathUnit, 'utf8');
      expect(p).toContain(`PathChanged=${prefix.replace('%', '%%')}/conda-meta\n`);
      // Every patched file too: `micromamba self-update` or an --exe outside the prefix touch no conda-meta.
      expect(p).toContain(`PathChanged=${prefix.replace('%', '%%')}/bin/mamba\n`);
      const s = fs.readFileSync(serviceUnit, 'utf8');
      expect(s).toContain('Type=oneshot\n');
      expect(s).toContain(`ExecStart="${prefix.replace('%', '%%')}/.mambapatch/hook.sh"\n`);
      const v = spawnSync('systemd-analyze', ['verify', pathUnit, serviceUnit], { encoding: 'utf8' });
      expect(v.stderr).toBe('');
      expect(v.status).toBe(0);
      // The verifier does check: a service whose ExecStart is missing fails.
      fs.rmSync(path.join(prefix, '.mambapatch', 'hook.sh'));
      expect(spawnSync('systemd-analyze', ['verify', pathUnit, serviceUnit], { encoding: 'utf8' }).status).not.toBe(0);
      expect(run(['hook', 'install', '--systemd', '--unit-dir', units, prefix]).status).toBe(0);

      const st = JSON.parse(run(['hook', 'status', prefix, '--json', '--unit-dir', units]).stdout);
      expect(st.systemd.units).toEqual([
        { name: `mambapatch-${esc}.path`, file: pathUnit, present: true },
        { name: `mambapatch-${esc}.service`, file: serviceUnit, present: true },
      ]);
      // As `systemctl enable` would leave it.
      fs.mkdirSync(path.join(units, 'paths.target.wants'));
      fs.symlinkSync(pathUnit, path.join(units, 'paths.target.wants', `mambapatch-${esc}.path`));
      const u = run(['hook', 'uninstall', '--systemd', '--unit-dir', units, prefix, '--json']);
      expect(u.status).toBe(0);
      expect(JSON.parse(u.stdout).removed).toEqual([
        path.join(units, 'paths.target.wants', `mambapatch-${esc}.path`),
        pathUnit,
        serviceUnit,
        path.join(prefix, '.mambapatch', 'hook.sh'),
      ]);
      expect(fs.readdirSync(units)).toEqual(['paths.target.wants']);
      expect(fs.readdirSync(path.join(units, 'paths.target.wants'))).toEqual([]);
    },
  );

  it('runs the hook as the owner of the state, with the prefix group', async () => {
    const { renderUnits } = await dist('hook/systemd.js');
    const u = renderUnits({ prefix: '/opt/conda', hook: '/opt/conda/.mambapatch/hook.sh', uid: 4101, gid: 4100 });
    expect(u.serviceUnit).toContain('User=4101\nGroup=4100\nUMask=0002\n');
    expect(renderUnits({ prefix: '/opt/conda', hook: '/h', uid: 0, gid: 0 }).serviceUnit).not.toContain('User=');
  });
});
