/**
 * A real third-party static executable: Debian's busybox-static, hooked with the shipped supervisor and run
 * as a second member of the group on a directory and a file another member owns. The kernel decides.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readElf } from '../../src/elf/index.js';
import { superviseSupport } from '../../src/supervisor/kernel.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { GROUP, MEMBER, OWNER, runAs } from '../helpers/users.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const BUSYBOX = '/bin/busybox';

function staticBusybox(): string | undefined {
  try {
    return readElf(fs.readFileSync(BUSYBOX)).isStatic ? undefined : `${BUSYBOX} is not the static build (package busybox-static)`;
  } catch {
    return `needs ${BUSYBOX} (package busybox-static)`;
  }
}

const skip = missing({ root: true, tools: ['setpriv'] }) ?? (process.env.CI === 'true' ? undefined : staticBusybox());

describe.skipIf(skip)('supervise on busybox-static', () => {
  let tmp: { dir: string; cleanup: () => void };
  let plain: string;
  let hooked: string;
  let shared: string;
  let file: string;
  beforeAll(() => {
    expect(staticBusybox()).toBeUndefined();
    expect(superviseSupport().supported).toBe(true);
    tmp = worldTmp('busybox');
    // busybox picks the applet from argv[0]: both copies are named busybox.
    plain = path.join(tmp.dir, 'plain', 'busybox');
    hooked = path.join(tmp.dir, 'hooked', 'busybox');
    for (const f of [plain, hooked]) fs.mkdirSync(path.dirname(f), { mode: 0o755 });
    fs.copyFileSync(BUSYBOX, plain);
    const r = spawnSync(process.execPath, [CLI, 'elf', 'add-entry-hook', plain, '--output', hooked], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    shared = path.join(tmp.dir, 'shared');
    fs.mkdirSync(shared);
    fs.chownSync(shared, OWNER.uid, GROUP);
    fs.chmodSync(shared, 0o2775);
    file = path.join(shared, 'index.json');
    fs.writeFileSync(file, '{}');
    fs.chownSync(file, OWNER.uid, GROUP);
    fs.chmodSync(file, 0o664);
    fs.utimesSync(file, 1_000_000, 1_000_000);
  });
  afterAll(() => tmp?.cleanup());

  const member = (exe: string, ...args: string[]) => runAs(MEMBER, exe, args);
  const mode = (p: string) => fs.statSync(p).mode & 0o7777;

  it('chmod to a mode the directory already allows: EPERM unhooked, success hooked, nothing changes', () => {
    const u = member(plain, 'chmod', '2775', shared);
    expect(u.status).toBe(1);
    expect(u.stderr).toBe(`chmod: ${shared}: Operation not permitted\n`);
    const h = member(hooked, 'chmod', '2775', shared);
    expect(h.stderr).toBe('');
    expect(h.status).toBe(0);
    expect(member(hooked, 'chmod', '0775', shared).status).toBe(0);
    // Taking the group's write away, or a file to executable: still refused.
    expect(member(hooked, 'chmod', '0755', shared).stderr).toBe(`chmod: ${shared}: Operation not permitted\n`);
    expect(member(hooked, 'chmod', '0775', file).status).toBe(1);
    expect(mode(shared)).toBe(0o2775);
    expect(mode(file)).toBe(0o664);
  });

  it('an explicit time near now becomes a touch; a week away stays EPERM', () => {
    const now = Math.floor(Date.now() / 1000);
    expect(member(plain, 'touch', '-d', `@${now}`, file).stderr).toBe(`touch: ${file}: Operation not permitted\n`);
    expect(fs.statSync(file).mtimeMs).toBe(1_000_000_000);
    const h = member(hooked, 'touch', '-d', `@${now}`, file);
    expect(h.stderr).toBe('');
    expect(h.status).toBe(0);
    expect(Math.abs(fs.statSync(file).mtimeMs / 1000 - Date.now() / 1000)).toBeLessThan(30);
    expect(member(hooked, 'touch', '-d', `@${now - 7 * 86400}`, file).status).toBe(1);
  });

  it('children and grandchildren are served, even an unhooked busybox started by the hooked one', () => {
    const r = member(hooked, 'sh', '-c', `"${plain}" chmod 2775 "${shared}" && "${hooked}" sh -c '"${plain}" chmod 2775 "${shared}"' && echo served`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('served\n');
    // The owner's own calls are untouched: they really change the mode.
    expect(runAs(OWNER, hooked, ['chmod', '2770', shared]).status).toBe(0);
    expect(mode(shared)).toBe(0o2770);
    fs.chmodSync(shared, 0o2775);
  });

  it('remove-entry-hook gives back the original bytes', () => {
    const back = path.join(tmp.dir, 'restored');
    const r = spawnSync(process.execPath, [CLI, 'elf', 'remove-entry-hook', hooked, '--output', back], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(fs.readFileSync(back).equals(fs.readFileSync(BUSYBOX))).toBe(true);
  });
});
