/**
 * aarch64 and ppc64le: the blob builds, and hooked static programs run under qemu-user, which does not
 * emulate seccomp (ENOSYS). There they must start and behave exactly as unpatched: same output, arguments,
 * environment, descriptors and exit status, and with MAMBAPATCH_DEBUG=1 one line saying why.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHookHeader } from '../../src/elf/hook-header.js';
import { hookBlob } from '../../src/supervisor/blob.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { GROUP, MEMBER, OWNER } from '../helpers/users.js';
import { runTarget, TARGETS } from '../shim/fixtures.js';
import { drivers, HOOK_DIR, staticProgram } from './fixtures.js';

for (const arch of ['aarch64', 'ppc64le'] as const) {
  const t = TARGETS[arch];
  const needs = missing({ root: true, tools: [t.gcc, t.runner[0]!, 'setpriv'] });
  describe.skipIf(needs)(`supervisor under qemu-${arch === 'ppc64le' ? 'ppc64le' : 'aarch64'}`, () => {
    let tmp: { dir: string; cleanup: () => void };
    beforeAll(() => {
      tmp = worldTmp(`sup-qemu-${arch}`);
      fs.chmodSync(tmp.dir, 0o2775);
      fs.chownSync(tmp.dir, OWNER.uid, GROUP);
    });
    afterAll(() => tmp?.cleanup());

    it('the shipped blob is there, current, and reads back', () => {
      const blob = hookBlob(arch);
      const h = parseHookHeader(blob.bytes, true);
      expect(h).toMatchObject({ abi: 1, arch, size: blob.bytes.length, delta: 0n });
      expect(blob.bytes.length % 16).toBe(0);
    });

    if (arch === 'aarch64')
      it('every register but x16, the flags and the stack reach the original entry as qemu left them', () => {
        const regs = staticProgram(t, { name: 'regs', compiler: t.gcc, args: ['-nostdlib'], sources: [path.join(HOOK_DIR, 'regs_aarch64.S')] }, 'static');
        const plain = runTarget(t, MEMBER, regs.plain, []).status;
        expect([0, 4]).toContain(plain); // 4: qemu starts with NZCV not clear; the registers are zero
        expect(runTarget(t, MEMBER, regs.hooked, []).status).toBe(plain);
      });

    // Debian's ppc64el cross libc has no static-pie start file (rcrt1.o)
    for (const kind of arch === 'ppc64le' ? (['static'] as const) : (['static', 'static-pie'] as const)) {
      it(`a hooked ${kind} program behaves exactly as unpatched`, () => {
        const prog = drivers(t, kind).scenarios;
        const dir = path.join(tmp.dir, kind);
        fs.mkdirSync(dir);
        fs.chownSync(dir, OWNER.uid, GROUP);
        fs.chmodSync(dir, 0o2775);
        const norm = (s: string, file: string) => s.replaceAll(file, '<exe>').replace(/^pid=\d+$/m, 'pid=<pid>');
        const env = { X: 'y z' };
        const plain = runTarget(t, MEMBER, prog.plain, ['ident', 'a b', ''], env);
        const hooked = runTarget(t, MEMBER, prog.hooked, ['ident', 'a b', ''], env);
        expect(norm(hooked.stdout, prog.hooked)).toBe(norm(plain.stdout, prog.plain));
        expect(hooked.stdout).toContain('wait=-1 errno=ECHILD\n');
        expect(hooked.stderr).toBe('');
        for (const status of ['0', '5']) expect(runTarget(t, MEMBER, prog.hooked, ['exit', status])).toEqual(runTarget(t, MEMBER, prog.plain, ['exit', status]));
        expect(runTarget(t, MEMBER, prog.hooked, ['thread', dir, '775'])).toEqual(runTarget(t, MEMBER, prog.plain, ['thread', dir, '775']));
        const debug = runTarget(t, MEMBER, prog.hooked, ['chmod', dir, '775'], { MAMBAPATCH_DEBUG: '1' });
        expect(debug.stdout).toBe('rc=-1 errno=EPERM\n');
        expect(debug.stderr).toBe('mambapatch: supervise: seccomp user notification not available (errno 38); running unpatched\n');
        expect(runTarget(t, OWNER, prog.hooked, ['chmod', dir, '2775'])).toEqual({ status: 0, stdout: 'rc=0 errno=0\n', stderr: '' });
      });
    }
  });
}
