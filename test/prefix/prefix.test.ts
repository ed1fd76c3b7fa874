/** Finding mamba in a prefix: the known-failures table, versions, prefix resolution, detection from the files. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { failuresFor, KNOWN_RANGES } from '../../src/prefix/known-failures.js';
import { compareVersions } from '../../src/prefix/version.js';
import { resolvePrefix } from '../../src/prefix/resolve.js';
import { detect } from '../../src/prefix/detect.js';
import { neededName } from '../../src/plan/names.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { makePrefix, type Fixture } from '../fixtures/prefix.js';

describe('known failures', () => {
  it.each([
    ['0.25.0', 'affected', 'explicit-time-runtimeerror'],
    ['0.26.0', 'affected', 'explicit-time-touch'],
    ['1.1.0', 'affected', 'explicit-time-touch'],
    ['1.2.0', 'not-affected', undefined],
    ['1.5.12', 'not-affected', undefined],
    ['2.0.0', 'affected', 'chmod-pkgs-cache'],
    ['2.8.1', 'affected', 'chmod-pkgs-cache'],
    ['2.8.2', 'unknown', 'chmod-pkgs-cache'],
    ['3.0.0', 'unknown', 'chmod-pkgs-cache'],
  ])('libmamba %s: %s', (v, verdict, id) => {
    const r = failuresFor(v);
    expect(r.verdict).toBe(verdict);
    expect(r.failures[0]?.id).toBe(id);
  });
  it('says "unknown" without a version', () => {
    expect(failuresFor(undefined).verdict).toBe('unknown');
  });
  it('is data: every range has a verdict and a note', () => {
    for (const r of KNOWN_RANGES) expect(r.note.length).toBeGreaterThan(0);
  });
  it('compares versions numerically', () => {
    expect(compareVersions('1.10.0', '1.9.9')).toBe(1);
    expect(compareVersions('2.0.0rc1', '2.0.0')).toBe(-1);
    expect(compareVersions('1.2', '1.2.0')).toBe(0);
  });
});

describe('prefix resolution', () => {
  const t = worldTmp('resolve');
  afterAll(() => t.cleanup());
  it('argument, then MAMBA_ROOT_PREFIX, then CONDA_ROOT, then mamba on PATH', () => {
    const p = path.join(t.dir, 'conda');
    fs.mkdirSync(path.join(p, 'condabin'), { recursive: true });
    fs.writeFileSync(path.join(p, 'condabin', 'mamba'), '#!/bin/sh\n', { mode: 0o755 });
    expect(resolvePrefix(p, {}).source).toBe('argument');
    expect(resolvePrefix(undefined, { MAMBA_ROOT_PREFIX: p, CONDA_ROOT: '/nonexistent' }).source).toBe('MAMBA_ROOT_PREFIX');
    expect(resolvePrefix(undefined, { CONDA_ROOT: p }).how).toBe('$CONDA_ROOT');
    const r = resolvePrefix(undefined, { PATH: `/nonexistent:${path.join(p, 'condabin')}` });
    expect(r).toMatchObject({ prefix: p, source: 'PATH' });
    expect(() => resolvePrefix(undefined, { PATH: '' })).toThrow(/no prefix given/);
    expect(() => resolvePrefix(path.join(t.dir, 'nope'), {})).toThrow(/no such directory/);
  });
  it('names the shim relative to the patched file', () => {
    expect(neededName('bin/mamba')).toBe('$ORIGIN/../lib/libmambapatch.so');
    expect(neededName('lib/libmamba.so.2')).toBe('$ORIGIN/libmambapatch.so');
    expect(neededName('condabin/mamba')).toBe('$ORIGIN/../lib/libmambapatch.so');
  });
});

describe.skipIf(missing({ tools: ['g++'] }))('detection from the files', () => {
  const fixtures: Fixture[] = [];
  afterAll(() => fixtures.forEach((f) => f.cleanup()));
  const make = (spec: Parameters<typeof makePrefix>[1]) => {
    const f = makePrefix('detect', { owner: undefined, ...spec });
    fixtures.push(f);
    return f.prefix;
  };
  it('mamba 1.x: a console script, libmamba.so.2, versions from conda-meta', () => {
    const d = detect(make({ mamba1: true }));
    expect(d.installs).toHaveLength(1);
    expect(d.installs[0]).toMatchObject({ kind: 'mamba1', entry: 'bin/mamba', format: 'script', libmamba: ['lib/libmamba.so.2'], arch: 'x86_64' });
    expect(d.installs[0]!.failures).toMatchObject({ version: '1.1.0', verdict: 'affected' });
    expect(d.skipped.map((s) => s.path)).toEqual(['condabin/mamba']);
  });
  it('mamba 2.x and a dynamic micromamba at once; a static micromamba is static (method supervise), supported', () => {
    const d = detect(make({ mamba2: true, micromamba: 'dynamic' }));
    expect(d.installs.map((i) => [i.kind, i.entry, i.static])).toEqual([
      ['mamba2', 'bin/mamba', false],
      ['micromamba', 'bin/micromamba', false],
    ]);
    const s = detect(make({ micromamba: 'static' }));
    expect(s.installs[0]).toMatchObject({ kind: 'micromamba', static: true, arch: 'x86_64' });
    expect(s.installs[0]!.unsupported).toBeUndefined();
    expect(s.installs[0]!.shimPresent).toBeUndefined();
  });
  it('decides from the ELF, not the name, and without conda-meta says the version is unknown', () => {
    const p = make({ micromamba: 'dynamic', condaMeta: false });
    fs.renameSync(path.join(p, 'bin', 'micromamba'), path.join(p, 'bin', 'mamba'));
    const d = detect(p);
    expect(d.installs[0]).toMatchObject({ kind: 'mamba2', format: 'elf', static: false });
    expect(d.installs[0]!.failures.verdict).toBe('unknown');
  });
  it('versions after the last known one are "unknown", and status says so', () => {
    const d = detect(make({ mamba2: true, versions: { mamba2: '2.9.0' } }));
    expect(d.installs[0]!.failures).toMatchObject({ version: '2.9.0', verdict: 'unknown' });
  });
});
