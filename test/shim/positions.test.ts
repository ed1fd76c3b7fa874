/** The shim in every loading position, natively (x86_64), plus Python's ctypes as the dlopen host. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { MEMBER, runAs } from '../helpers/users.js';
import { cachedBuild } from '../helpers/build.js';
import { buildBinaries, makePrefix, ROOT, runTarget, shimFile, TARGETS } from './fixtures.js';
import { MESSAGE, positionSuite } from './positions.js';

const host = process.arch === 'x64';
const needs = host ? missing({ root: true, tools: ['gcc', 'g++', 'setpriv'] }) : 'the native suite runs on x86_64';

describe.skipIf(needs)('shim loading positions, native', () => {
  positionSuite(TARGETS.x86_64);

  it('in the library position, leaves calls bound to another interposer alone', () => {
    const bins = buildBinaries(TARGETS.x86_64);
    const interposer = cachedBuild({
      name: 'libinterposer.so',
      compiler: 'gcc',
      args: ['-O1', '-shared', '-fPIC'],
      sources: [path.join(ROOT, 'test/shim/interposer.c')],
    });
    const tmp = worldTmp('shim-interposer');
    try {
      const prefix = makePrefix(tmp.dir + '/p', { shim: shimFile('x86_64') });
      fs.copyFileSync(bins.carrier, path.join(prefix, 'lib/libcarrier.so'));
      fs.copyFileSync(bins.lateLib, path.join(prefix, 'lib/liblate.so'));
      const lib = path.join(prefix, 'lib');
      const args = [path.join(lib, 'libcarrier.so'), path.join(lib, 'liblate.so'), path.join(prefix, 'pkgs/cache'), '0775'];
      expect(runTarget(TARGETS.x86_64, MEMBER, bins.lateHost, args).stdout).toBe('self=0 late=0 closed=0\n');
      const r = runTarget(TARGETS.x86_64, MEMBER, bins.lateHost, args, { LD_PRELOAD: interposer });
      expect(r.stdout).toBe('self=other late=other closed=other\n');
    } finally {
      tmp.cleanup();
    }
  });

  describe('NEEDED of a library that python3 loads with ctypes', () => {
    let tmp: { dir: string; cleanup: () => void };
    beforeAll(() => {
      tmp = worldTmp('shim-py');
      fs.copyFileSync(path.join(ROOT, 'templates/demo/mamba1_main.py'), path.join(tmp.dir, 'mamba1_main.py'));
    });
    afterAll(() => tmp?.cleanup());
    it('patches a library that python loads later (by path and by bare name)', () => {
      const bins = buildBinaries(TARGETS.x86_64);
      const prefix = makePrefix(path.join(tmp.dir, 'late'), { lib: bins.lib[2].withShim, shim: shimFile('x86_64') });
      const lib = path.join(prefix, 'lib');
      fs.copyFileSync(bins.lateLib, path.join(lib, 'liblate.so'));
      const script = [
        'import ctypes, sys',
        'ctypes.CDLL(sys.argv[1])',
        'late = ctypes.CDLL(sys.argv[2])',
        'print(late.late_chmod(sys.argv[3].encode(), 0o775))',
      ].join('\n');
      const run = (first: string, late: string) =>
        runAs(MEMBER, '/usr/bin/python3', ['-c', script, first, late, path.join(prefix, 'pkgs/cache')], {
          env: { PATH: '/usr/bin:/bin', LANG: 'C', LD_LIBRARY_PATH: lib },
        }).stdout;
      expect(run(bins.lib[2].plain, 'liblate.so')).toBe('1\n'); // EPERM without the shim
      expect(run(path.join(lib, 'libmamba.so.4'), path.join(lib, 'liblate.so'))).toBe('0\n');
      expect(run(path.join(lib, 'libmamba.so.4'), 'liblate.so')).toBe('0\n');
    });

    for (const major of [1, 2] as const) {
      for (const withShim of [false, true]) {
        it(`mamba ${major}.x ${withShim ? 'succeeds with' : 'fails without'} the shim`, () => {
          const bins = buildBinaries(TARGETS.x86_64);
          const prefix = makePrefix(path.join(tmp.dir, `m${major}-${withShim}`), {
            lib: withShim ? bins.lib[major].withShim : bins.lib[major].plain,
            shim: shimFile('x86_64'),
          });
          const r = runAs(MEMBER, '/usr/bin/python3', ['-c', 'import sys, mamba1_main; sys.exit(mamba1_main.main())'], {
            env: { PATH: '/usr/bin:/bin', LANG: 'C', PYTHONPATH: tmp.dir, MAMBA_ROOT_PREFIX: prefix },
          });
          if (withShim) {
            expect([r.status, r.stdout, r.stderr]).toEqual([0, `mamba ${major}.x stand-in: install finished\n`, '']);
          } else {
            expect([r.status, r.stderr]).toEqual([1, MESSAGE[major](prefix)]);
          }
        });
      }
    }
  });
});
