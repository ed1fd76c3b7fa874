/** doctor's supervise-kernel check and the kernel verdict behind it (status shows the same). */
import * as os from 'node:os';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { superviseSupport } from '../../src/supervisor/kernel.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { cli, makePrefix, type Fixture } from '../fixtures/prefix.js';

const fixtures: Fixture[] = [];
afterAll(() => fixtures.forEach((f) => f.cleanup()));

describe('superviseSupport', () => {
  const tmp = worldTmp('kernel');
  afterAll(() => tmp.cleanup());
  const actions = (text: string): string => {
    const f = path.join(tmp.dir, `actions-${text.length}`);
    fs.writeFileSync(f, text);
    return f;
  };
  it('needs Linux 5.8 and user_notif in actions_avail', () => {
    const full = actions('kill_process kill_thread trap errno user_notif trace log allow\n');
    expect(superviseSupport('5.8.0', full)).toMatchObject({ supported: true });
    expect(superviseSupport('6.1.0-13-amd64', full)).toMatchObject({ supported: true });
    expect(superviseSupport('5.7.19', full)).toEqual({ supported: false, why: 'kernel 5.7.19 is older than Linux 5.8: supervised executables run unpatched (as before apply)' });
    expect(superviseSupport('4.18.0-513.el8.x86_64', full).supported).toBe(false);
    expect(superviseSupport('5.10.0', actions('kill_process kill_thread trap errno trace log allow\n')).why).toMatch(/does not list user_notif/);
    expect(superviseSupport('5.10.0', path.join(tmp.dir, 'absent')).why).toMatch(/cannot read .*absent \(ENOENT\)/);
  });
  it('this machine: the verdict follows the running kernel', () => {
    const avail = fs.readFileSync('/proc/sys/kernel/seccomp/actions_avail', 'utf8');
    const [maj, min] = os.release().split('.').map(Number) as [number, number];
    expect(superviseSupport().supported).toBe(avail.includes('user_notif') && (maj > 5 || (maj === 5 && min >= 8)));
  });
});

describe.skipIf(missing({ root: true, tools: ['g++'] }))('doctor supervise-kernel', () => {
  const doctor = (prefix: string) => {
    const r = cli(['doctor', prefix, '--json']);
    return (JSON.parse(r.stdout).checks as { name: string; status: string; finding: string }[]).find((c) => c.name === 'supervise-kernel')!;
  };
  it('names the static executables that need it, and says nothing is needed without one', () => {
    const s = makePrefix('doctor-static', { micromamba: 'static' });
    const d = makePrefix('doctor-dynamic', { mamba2: true });
    fixtures.push(s, d);
    const k = superviseSupport();
    const withStatic = doctor(s.prefix);
    expect(withStatic.status).toBe(k.supported ? 'ok' : 'problem');
    expect(withStatic.finding).toContain('bin/micromamba');
    expect(withStatic.finding).toContain(k.why);
    expect(doctor(d.prefix)).toMatchObject({ status: 'ok', finding: `no static executable needs it (${k.why})` });
    expect(cli(['doctor', '--list']).stdout).toMatch(/supervise-kernel/);
  });
});
