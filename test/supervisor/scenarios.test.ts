/**
 * The supervisor in the situations issue 8 names, natively on x86_64, as a second group member on a tree
 * owned by another uid: calls from a second thread, a child, a grandchild (system("chmod ...") running
 * /bin/chmod), the hooked program re-executing itself, relative paths and a dirfd; SIGINT to the process
 * group while the program waits in its own handler; a program that blocks every signal; kill -9 leaves
 * no live supervisor; seccomp refused → unchanged, one MAMBAPATCH_DEBUG line; and nothing a program can
 * see changes (argv, environment, /proc/self/exe, pid, open descriptors, no child to wait for, exit
 * status, output).
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedBuild } from '../helpers/build.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { GROUP, MEMBER, OWNER, runAs } from '../helpers/users.js';
import { runTarget, TARGETS } from '../shim/fixtures.js';
import { drivers, HOOK_DIR, liveSupervisors, staticProgram, type Program } from './fixtures.js';

const t = TARGETS.x86_64;
const needs = process.arch === 'x64' ? missing({ root: true, tools: ['gcc', 'setpriv'] }) : 'native suite runs on x86_64';
const SETPRIV = ['setpriv', `--reuid=${MEMBER.uid}`, `--regid=${MEMBER.gid}`, '--clear-groups', '--inh-caps=-all', '--'];

/** Starts `file args` as MEMBER in its own process group; resolves when it printed `ready`. */
function startAsMember(file: string, args: string[], env: Record<string, string>) {
  const child = spawn(SETPRIV[0]!, [...SETPRIV.slice(1), '/usr/bin/env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), file, ...args], {
    env: { PATH: '/usr/bin:/bin', LANG: 'C' },
    cwd: '/',
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal, out })),
  );
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) resolve();
    });
    child.on('close', () => reject(new Error(`exited before ready: ${out}`)));
  });
  return { child, ready, exited };
}

async function until(cond: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (cond()) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return cond();
}

describe.skipIf(needs).each(['static', 'static-pie'] as const)('supervisor: processes, signals and identity, %s', (kind) => {
  let prog: Program;
  let tmp: { dir: string; cleanup: () => void };
  let n = 0;
  beforeAll(() => {
    prog = drivers(t, kind).scenarios;
    tmp = worldTmp(`sup-scen-${kind}`);
    fs.chmodSync(tmp.dir, 0o2775);
    fs.chownSync(tmp.dir, OWNER.uid, GROUP);
  });
  afterAll(() => tmp?.cleanup());

  /** A fresh 2775 directory of OWNER: chmod 775 by MEMBER is EPERM unpatched, success with the fix. */
  const cacheDir = (): string => {
    const p = path.join(tmp.dir, `cache${n++}`);
    fs.mkdirSync(p);
    fs.chownSync(p, OWNER.uid, GROUP);
    fs.chmodSync(p, 0o2775);
    return p;
  };
  const run = (file: string, args: string[], env: Record<string, string> = {}) => runTarget(t, MEMBER, file, args, env);

  it('serves a second thread, a child, a grandchild (/bin/chmod), a re-executed self, relative paths and a dirfd', () => {
    for (const op of ['chmod', 'thread', 'child', 'reexec', 'blockall']) {
      const d = cacheDir();
      expect(run(prog.plain, [op, d, '775']).stdout, `${op} unhooked`).toBe('rc=-1 errno=EPERM\n');
      expect(run(prog.hooked, [op, d, '775']).stdout, op).toBe('rc=0 errno=0\n');
      expect(fs.statSync(d).mode & 0o7777).toBe(0o2775);
    }
    // started with SIGCHLD ignored (inherited): the intermediate child is reaped by the kernel
    const ign = cacheDir();
    const viaSh = (file: string) => runAs(MEMBER, '/bin/sh', ['-c', 'trap "" CHLD; exec "$0" chmod "$1" 775', file, ign]).stdout;
    expect(viaSh(prog.plain)).toBe('rc=-1 errno=EPERM\n');
    expect(viaSh(prog.hooked)).toBe('rc=0 errno=0\n');
    const d = cacheDir();
    expect(run(prog.plain, ['system', d, '775']).stdout).toBe('status=1\n');
    expect(run(prog.hooked, ['system', d, '775']).stdout).toBe('status=0\n');
    for (const op of ['relative', 'at']) {
      const dir = cacheDir();
      fs.mkdirSync(path.join(dir, 'sub'));
      fs.chownSync(path.join(dir, 'sub'), OWNER.uid, GROUP);
      fs.chmodSync(path.join(dir, 'sub'), 0o2775);
      expect(run(prog.plain, [op, dir, 'sub', '775']).stdout, `${op} unhooked`).toBe('rc=-1 errno=EPERM\n');
      expect(run(prog.hooked, [op, dir, 'sub', '775']).stdout, op).toBe('rc=0 errno=0\n');
      expect(run(prog.hooked, [op, dir, 'sub', '700']).stdout, `${op} 700`).toBe('rc=-1 errno=EPERM\n');
    }
  });

  it('SIGINT to the process group while it waits in its own handler: the handler’s call is served', async () => {
    const d = cacheDir();
    const p = startAsMember(prog.hooked, ['sigint', d, '775'], {});
    await p.ready;
    process.kill(-p.child.pid!, 'SIGINT');
    const r = await p.exited;
    expect(r.out).toBe('ready\nrc=0 errno=0\n');
    expect(r.code).toBe(0);
  });

  it('kill -9 of the program leaves no live supervisor; a normal exit neither', async () => {
    const token = `MP_SUP_TEST=${process.pid}-${kind}-${Date.now()}`;
    const p = startAsMember(prog.hooked, ['sleep'], { [token.split('=')[0]!]: token.split('=')[1]! });
    await p.ready;
    // the supervisor names itself once it is scheduled; the program does not wait for that
    expect(await until(() => liveSupervisors(token).length === 1, 5_000)).toBe(true);
    process.kill(p.child.pid!, 'SIGKILL');
    await p.exited;
    expect(await until(() => liveSupervisors(token).length === 0, 5_000)).toBe(true);
    const token2 = `${token}-exit`;
    const r = run(prog.hooked, ['exit', '0'], { MP_SUP_TEST: token2.split('=')[1]! });
    expect(r.stdout).toBe('bye\n');
    expect(await until(() => liveSupervisors(token2).length === 0, 5_000)).toBe(true);
  });

  it('argv, environment, /proc/self/exe, pid, open descriptors, children, exit status and output unchanged', () => {
    const ident = (file: string) =>
      runAs(MEMBER, '/bin/sh', ['-c', 'echo "shell=$$"; exec "$0" ident "a b" "" c', file], { env: { PATH: '/usr/bin:/bin', LANG: 'C', X: 'y z' } });
    const before = ident(prog.plain);
    const after = ident(prog.hooked);
    const norm = (s: string, file: string) => s.replaceAll(file, '<exe>').replace(/^(shell|pid)=\d+$/gm, '$1=<pid>');
    expect(norm(after.stdout, prog.hooked)).toBe(norm(before.stdout, prog.plain));
    expect(after.stderr).toBe('');
    expect(after.stdout).toContain(`exe=${prog.hooked}\n`);
    const shell = /^shell=(\d+)$/m.exec(after.stdout)?.[1];
    expect(after.stdout).toContain(`pid=${shell}\n`);
    expect(after.stdout).toContain('wait=-1 errno=ECHILD\n');
    for (const status of [0, 3, 77]) {
      expect(run(prog.hooked, ['exit', String(status)])).toEqual(run(prog.plain, ['exit', String(status)]));
      expect(run(prog.hooked, ['exit', String(status)]).status).toBe(status);
    }
  });

  it('every register, the flags and the stack reach the original entry as the kernel left them', () => {
    const regs = staticProgram(t, { name: 'regs', compiler: t.gcc, args: ['-nostdlib'], sources: [path.join(HOOK_DIR, 'regs_x86_64.S')] }, 'static');
    for (const who of [MEMBER, { uid: 0, gid: 0 }]) {
      expect(runAs(who, regs.plain).status).toBe(0);
      expect(runAs(who, regs.hooked).status).toBe(0);
    }
  });

  it('seccomp refused (an outer filter): runs exactly as unpatched; MAMBAPATCH_DEBUG=1 says why in one line', () => {
    const launcher = cachedBuild({ name: 'no-seccomp', compiler: 'gcc', args: ['-O1'], sources: [path.join(HOOK_DIR, 'no_seccomp.c')] });
    const d = cacheDir();
    const plain = runAs(MEMBER, launcher, [prog.plain, 'chmod', d, '775']);
    const quiet = runAs(MEMBER, launcher, [prog.hooked, 'chmod', d, '775']);
    expect(quiet).toEqual(plain);
    expect(plain.stdout).toBe('rc=-1 errno=EPERM\n');
    const debug = runAs(MEMBER, '/usr/bin/env', ['MAMBAPATCH_DEBUG=1', launcher, prog.hooked, 'chmod', d, '775']);
    expect(debug.stdout).toBe('rc=-1 errno=EPERM\n');
    expect(debug.stderr).toBe('mambapatch: supervise: seccomp user notification not available (errno 1); running unpatched\n');
    expect(debug.status).toBe(0);
  });
});
