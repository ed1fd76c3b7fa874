/**
 * The two libmamba failures in a fully static micromamba stand-in (templates/demo, both majors, -static
 * and -static-pie) in a shared prefix, run as a second group member: both errors unhooked, success hooked,
 * the prefix found through /proc/self/exe as before; the owner unaffected.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { MEMBER, OWNER } from '../helpers/users.js';
import { makePrefix, ROOT, runTarget, TARGETS } from '../shim/fixtures.js';
import { staticProgram, type StaticKind } from './fixtures.js';

const t = TARGETS.x86_64;
const needs = process.arch === 'x64' ? missing({ root: true, tools: ['g++', 'setpriv'] }) : 'native suite runs on x86_64';
const DEMO = path.join(ROOT, 'templates/demo');

const ERRORS: Record<1 | 2, RegExp> = {
  1: /^filesystem error: cannot set file time: Operation not permitted \[.*\/pkgs\/cache\/497deca9\.json\]\n$/,
  2: /^critical libmamba filesystem error: cannot set permissions: Operation not permitted \[.*\/pkgs\/cache\]\n$/,
};

describe.skipIf(needs)('supervisor: the libmamba stand-ins linked fully static', () => {
  let tmp: { dir: string; cleanup: () => void };
  beforeAll(() => {
    tmp = worldTmp('sup-standins');
  });
  afterAll(() => tmp?.cleanup());

  const micromamba = (major: 1 | 2, kind: StaticKind) =>
    staticProgram(
      t,
      {
        name: 'micromamba',
        compiler: t.gxx,
        args: ['-std=c++17', '-O1', `-DSTANDIN_MAJOR=${major}`],
        sources: [path.join(DEMO, 'mamba2_main.cpp'), path.join(DEMO, 'libmamba_standin.cpp')],
      },
      kind,
    );

  for (const kind of ['static', 'static-pie'] as const) {
    for (const major of [1, 2] as const) {
      it(`libmamba ${major}.x failure, ${kind}: fails unhooked, succeeds hooked, owner unaffected`, () => {
        const prog = micromamba(major, kind);
        const prefix = (name: string, exe: string) => makePrefix(path.join(tmp.dir, `${kind}-${major}-${name}`), { exe });
        const before = prefix('plain', prog.plain);
        const r0 = runTarget(t, MEMBER, path.join(before, 'bin/mamba'), ['install']);
        expect(r0.stderr).toMatch(ERRORS[major]);
        expect(r0.status).not.toBe(0);
        const after = prefix('hooked', prog.hooked);
        const json = path.join(after, 'pkgs/cache/497deca9.json');
        fs.utimesSync(json, 1_000_000, 1_000_000);
        const r1 = runTarget(t, MEMBER, path.join(after, 'bin/mamba'), ['install']);
        expect(r1).toEqual({ status: 0, stdout: `mamba ${major}.x stand-in: install finished\n`, stderr: '' });
        expect(fs.statSync(path.join(after, 'pkgs/cache')).mode & 0o7777).toBe(0o2775);
        expect(Math.abs(fs.statSync(json).mtimeMs - Date.now())).toBeLessThan(10_000);
        expect(runTarget(t, OWNER, path.join(after, 'bin/mamba'), ['install'])).toEqual(runTarget(t, OWNER, path.join(before, 'bin/mamba'), ['install']));
      });
    }
  }
});
