/**
 * The core behaviour every shipped shim must show, shared by the native (x86_64) and the qemu
 * (aarch64, ppc64le) suites: as a second member of the group, the stand-in's two failures appear
 * verbatim without the shim and turn into success in every loading position.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { worldTmp } from '../helpers/tmp.js';
import { MEMBER } from '../helpers/users.js';
import { buildBinaries, makePrefix, runTarget, shimFile, type Binaries, type Target } from './fixtures.js';

export const MESSAGE = {
  1: (prefix: string) => `filesystem error: cannot set file time: Operation not permitted [${prefix}/pkgs/cache/497deca9.json]\n`,
  2: (prefix: string) => `critical libmamba filesystem error: cannot set permissions: Operation not permitted [${prefix}/pkgs/cache]\n`,
} as const;

type Position = 'none' | 'preload' | 'exe-first-needed' | 'lib-needed' | 'lib-needed-dlopen';
const POSITIONS: Position[] = ['none', 'preload', 'exe-first-needed', 'lib-needed', 'lib-needed-dlopen'];

export function positionSuite(t: Target): void {
  let bins: Binaries;
  let tmp: { dir: string; cleanup: () => void };
  beforeAll(() => {
    bins = buildBinaries(t);
    tmp = worldTmp(`shim-${t.arch}`);
  });
  afterAll(() => tmp?.cleanup());

  const setup = (major: 1 | 2, pos: Position, extraEnv: Record<string, string> = {}, tag = '') => {
    const prefix = path.join(tmp.dir, `m${major}-${pos}${tag}`);
    makePrefix(prefix, {
      exe: pos === 'exe-first-needed' ? bins.exe.shimFirst : bins.exe.plain,
      lib: pos.startsWith('lib-needed') ? bins.lib[major].withShim : bins.lib[major].plain,
      shim: shimFile(t.arch),
    });
    const env: Record<string, string> = { MAMBA_ROOT_PREFIX: prefix, ...extraEnv };
    if (pos === 'preload') env.LD_PRELOAD = path.join(prefix, 'lib/libmambapatch.so');
    return pos === 'lib-needed-dlopen'
      ? runTarget(t, MEMBER, bins.dlopenHost, [path.join(prefix, 'lib/libmamba.so.4'), prefix], env)
      : runTarget(t, MEMBER, path.join(prefix, 'bin/mamba'), [], env);
  };

  for (const major of [1, 2] as const) {
    describe(`mamba ${major}.x stand-in as a group member (${t.arch})`, () => {
      for (const pos of POSITIONS) {
        it(pos === 'none' ? 'fails with the real message without the shim' : `succeeds with the shim: ${pos}`, () => {
          const r = setup(major, pos);
          const prefix = path.join(tmp.dir, `m${major}-${pos}`);
          if (pos === 'none') {
            expect(r.stderr).toBe(MESSAGE[major](prefix));
            expect(r.status).toBe(1);
          } else {
            expect(r.stderr).toBe('');
            expect(r.stdout).toBe(`mamba ${major}.x stand-in: install finished\n`);
            expect(r.status).toBe(0);
            // nothing was made more open, nothing taken away
            expect(fs.statSync(path.join(prefix, 'pkgs/cache')).mode & 0o7777).toBe(0o2775);
          }
        });
      }
    });
  }

  it(`rewrites GOT entries only in the library position, never when interposing (${t.arch})`, () => {
    const AFTER_LIBC = /^mambapatch: loaded after libc: redirected (\d+) GOT entries to the shim$/m;
    for (const pos of ['preload', 'exe-first-needed', 'lib-needed', 'lib-needed-dlopen'] as const) {
      const r = setup(2, pos, { MAMBAPATCH_DEBUG: '1' }, '-debug');
      expect([r.status, r.stdout], pos).toEqual([0, 'mamba 2.x stand-in: install finished\n']);
      const line = AFTER_LIBC.exec(r.stderr);
      if (pos.startsWith('lib-needed')) expect(Number(line?.[1]), `${pos}: ${r.stderr}`).toBeGreaterThan(0);
      else expect(line, `${pos}: ${r.stderr}`).toBeNull();
      // the fallback itself is reported the same way in every position
      expect(r.stderr, pos).toContain('): refused (EPERM); current mode 2775 already allows it: reporting success\n');
    }
  });

  describe(`the library position patches objects loaded before and after it (${t.arch})`, () => {
    for (const how of ['by path', 'by bare name'] as const) {
      it(`read-only GOT of the host, a library dlopen()ed later ${how}, and after dlclose`, () => {
        const prefix = path.join(tmp.dir, `late-${how.replace(/ /g, '-')}`);
        makePrefix(prefix, { lib: bins.lib[2].withShim, shim: shimFile(t.arch) });
        fs.copyFileSync(bins.lateLib, path.join(prefix, 'lib/liblate.so'));
        fs.copyFileSync(bins.carrier, path.join(prefix, 'lib/libcarrier.so'));
        const lib = path.join(prefix, 'lib');
        const cache = path.join(prefix, 'pkgs/cache');
        const late = how === 'by path' ? path.join(lib, 'liblate.so') : 'liblate.so';
        const env: Record<string, string> = how === 'by path' ? {} : { LD_LIBRARY_PATH: lib };
        const run = (shimLib: string) => runTarget(t, MEMBER, bins.lateHost, [shimLib, late, cache, '0775'], env);
        // without the shim both calls are refused; with it both are reported done
        expect(run(bins.lateLib).stdout).toBe('self=EPERM late=EPERM closed=EPERM\n');
        const r = run(path.join(lib, 'libcarrier.so'));
        expect([r.stdout, r.stderr, r.status]).toEqual(['self=0 late=0 closed=0\n', '', 0]);
      });
    }
  });

  describe(`safety rules under the preloaded shim (${t.arch})`, () => {
    const call = (args: string[], env: Record<string, string> = {}) =>
      runTarget(t, MEMBER, bins.calls, args, { LD_PRELOAD: shimFile(t.arch), ...env }).stdout.trim();
    it('touches to now only for a time near now', () => {
      const p = makePrefix(path.join(tmp.dir, 'times'), {});
      const json = path.join(p, 'pkgs/cache/497deca9.json');
      expect(runTarget(t, MEMBER, bins.calls, ['utimensat', json, '0']).stdout.trim()).toBe('rc=-1 errno=EPERM');
      expect(call(['utimensat', json, '0'])).toBe('rc=0 errno=0');
      expect(call(['utimensat', json, '604800'])).toBe('rc=-1 errno=EPERM');
      expect(call(['utimes', json, '-604800'])).toBe('rc=-1 errno=EPERM');
    });
    it('reports a refused chmod as done only when nothing would change for owner and group', () => {
      const p = makePrefix(path.join(tmp.dir, 'modes'), {});
      const dir = path.join(p, 'pkgs/cache');
      expect(call(['fchmodat', dir, '0775'])).toBe('rc=0 errno=0');
      fs.chmodSync(dir, 0o775);
      expect(call(['fchmodat', dir, '0700'])).toBe('rc=-1 errno=EPERM');
      expect(fs.statSync(dir).mode & 0o7777).toBe(0o775);
    });
  });
}
