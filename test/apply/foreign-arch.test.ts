/**
 * A prefix of another architecture (aarch64, ppc64le): apply picks that architecture's shim from the ELF,
 * and the patched stand-in works for a second member under qemu-user (the kernel's checks are the host's).
 */
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildPrefix } from '../../src/demo/prefix.js';
import { cachedBuild } from '../helpers/build.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { MEMBER, OWNER, runAs } from '../helpers/users.js';
import { cli, FAIL_2X, snapshot } from '../fixtures/prefix.js';

const ARCHES = [
  { arch: 'aarch64', triple: 'aarch64-linux-gnu', qemu: 'qemu-aarch64' },
  { arch: 'ppc64le', triple: 'powerpc64le-linux-gnu', qemu: 'qemu-ppc64le' },
];

for (const a of ARCHES) {
  describe.skipIf(missing({ root: true, tools: [`${a.triple}-g++`, a.qemu, 'setpriv'] }))(`${a.arch} prefix`, () => {
    const t = worldTmp(`arch-${a.arch}`);
    afterAll(() => t.cleanup());
    it('needed method with the matching shim, proved under qemu as a second member', () => {
      const prefix = path.join(t.dir, 'conda');
      buildPrefix(prefix, { mamba2: true, owner: OWNER }, (req) => cachedBuild({ ...req, compiler: `${a.triple}-g++` }));
      const run = () =>
        runAs(MEMBER, a.qemu, ['-L', `/usr/${a.triple}`, path.join(prefix, 'bin', 'mamba'), 'install'], { env: { PATH: '/usr/bin:/bin' } });
      const original = snapshot(prefix);
      expect(run().stderr).toContain(FAIL_2X);
      const r = cli(['apply', prefix, '--json']);
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).plan.shim.arch).toBe(a.arch);
      const ok = run();
      expect(ok.stderr).toBe('');
      expect(ok.status).toBe(0);
      expect(cli(['revert', prefix, '-q']).status).toBe(0);
      expect(snapshot(prefix)).toEqual(original);
      expect(run().stderr).toContain(FAIL_2X);
    });
  });
}
