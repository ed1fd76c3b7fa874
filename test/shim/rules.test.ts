/**
 * The shim's safety rules, natively, as the kernel decides them: every mode example of the issue,
 * explicit times near and far from now through every timestamp function, the owner's calls unchanged,
 * errno preserved, MAMBAPATCH_DEBUG, and LD_PRELOAD hygiene for children.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { MEMBER, OWNER } from '../helpers/users.js';
import { buildBinaries, runTarget, shimFile, TARGETS } from './fixtures.js';
import { MODE_FUNCTIONS, MODES, OWNER_CASES, TIME_FUNCTIONS, ruleTree } from './rule-table.js';

const t = TARGETS.x86_64;
const needs = process.arch === 'x64' ? missing({ root: true, tools: ['gcc', 'g++', 'setpriv'] }) : 'native suite runs on x86_64';
const SHIM = shimFile('x86_64');

describe.skipIf(needs)('shim safety rules', () => {
  let calls: string;
  const tree = ruleTree('shim-rules');
  const node = tree.node;
  beforeAll(() => {
    calls = buildBinaries(t).calls;
    tree.create();
  });
  afterAll(() => tree.cleanup());
  const run = (who: typeof MEMBER, args: string[], env: Record<string, string> = {}) =>
    runTarget(t, who, calls, args, env);
  const withShim = (who: typeof MEMBER, args: string[], env: Record<string, string> = {}) =>
    run(who, args, { LD_PRELOAD: SHIM, ...env });
  const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;

  for (const fn of MODE_FUNCTIONS) {
    it(`${fn}: every mode rule, and the mode never changes`, () => {
      for (const [kind, cur, req, expected] of MODES) {
        const p = node(kind, cur);
        const label = `${fn} ${kind} ${cur.toString(8)} -> ${req.toString(8)}`;
        expect(run(MEMBER, [fn, p, req.toString(8)]).stdout.trim(), `${label} without the shim`).toBe('rc=-1 errno=EPERM');
        expect(withShim(MEMBER, [fn, p, req.toString(8)]).stdout.trim(), label).toBe(expected);
        expect(modeOf(p), label).toBe(cur);
      }
    });
  }

  it('keeps errno for failures that are not EPERM', () => {
    const missingFile = path.join(tree.dir(), 'no-such-file');
    expect(withShim(MEMBER, ['chmod', missingFile, '775']).stdout.trim()).toBe('rc=-1 errno=ENOENT');
    expect(withShim(MEMBER, ['utimensat', missingFile, '0']).stdout.trim()).toBe('rc=-1 errno=ENOENT');
    const readOnly = node('file', 0o644); // a plain touch needs write access: EACCES stays EACCES
    expect(withShim(MEMBER, ['touch', readOnly]).stdout.trim()).toBe('rc=-1 errno=EACCES');
    expect(withShim(MEMBER, ['utimensat', readOnly, '0']).stdout.trim()).toBe('rc=-1 errno=EACCES');
  });

  for (const fn of TIME_FUNCTIONS) {
    it(`${fn}: an explicit time near now becomes a touch; a week away stays EPERM`, () => {
      const p = node('file', 0o664);
      fs.utimesSync(p, 1_000_000, 1_000_000);
      expect(run(MEMBER, [fn, p, '0']).stdout.trim()).toBe('rc=-1 errno=EPERM');
      expect(withShim(MEMBER, [fn, p, '604800']).stdout.trim()).toBe('rc=-1 errno=EPERM');
      expect(withShim(MEMBER, [fn, p, '-604800']).stdout.trim()).toBe('rc=-1 errno=EPERM');
      expect(fs.statSync(p).mtimeMs).toBe(1_000_000_000);
      expect(withShim(MEMBER, [fn, p, '3']).stdout.trim()).toBe('rc=0 errno=0');
      expect(Math.abs(fs.statSync(p).mtimeMs - Date.now())).toBeLessThan(5_000);
    });
  }

  it('MAMBAPATCH_TIME_WINDOW adjusts the window', () => {
    const p = node('file', 0o664);
    expect(withShim(MEMBER, ['utimensat', p, '60']).stdout.trim()).toBe('rc=-1 errno=EPERM');
    expect(withShim(MEMBER, ['utimensat', p, '60'], { MAMBAPATCH_TIME_WINDOW: '120' }).stdout.trim()).toBe('rc=0 errno=0');
    expect(withShim(MEMBER, ['utimensat', p, '0'], { MAMBAPATCH_TIME_WINDOW: '0' }).stdout.trim()).toBe('rc=-1 errno=EPERM');
  });

  it("the owner's calls behave exactly as without the shim", () => {
    for (const [fn, kind, mode, arg] of OWNER_CASES) {
      const a = node(kind, mode);
      const b = node(kind, mode);
      const plain = run(OWNER, [fn, a, arg]);
      const shimmed = withShim(OWNER, [fn, b, arg], { MAMBAPATCH_DEBUG: '1' });
      expect(shimmed, `${fn} ${arg}`).toEqual(plain);
      expect(fs.statSync(b).mode).toBe(fs.statSync(a).mode);
      if (fn.includes('utime')) expect(Math.abs(fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)).toBeLessThan(5_000);
    }
  });

  it('MAMBAPATCH_DEBUG=1 prints one line per fallback; nothing otherwise', () => {
    const dir = node('dir', 0o2775);
    const file = node('file', 0o664);
    const d1 = withShim(MEMBER, ['fchmodat', dir, '775'], { MAMBAPATCH_DEBUG: '1' });
    expect(d1.stderr).toBe(`mambapatch: fchmodat(${dir}, 0775): refused (EPERM); current mode 2775 already allows it: reporting success\n`);
    const d2 = withShim(MEMBER, ['utimensat', file, '0'], { MAMBAPATCH_DEBUG: '1' });
    expect(d2.stderr).toBe(`mambapatch: utimensat(${file}): explicit time refused (EPERM); touched to now instead: ok\n`);
    const d3 = withShim(MEMBER, ['fchmod', dir, '775'], { MAMBAPATCH_DEBUG: '1' });
    expect(d3.stderr).toMatch(/^mambapatch: fchmod\(fd \d+, 0775\): refused \(EPERM\); current mode 2775 already allows it: reporting success\n$/);
    // no fallback taken: nothing printed, even with DEBUG
    expect(withShim(MEMBER, ['utimensat', file, '604800'], { MAMBAPATCH_DEBUG: '1' }).stderr).toBe('');
    // without DEBUG: nothing, ever
    expect(withShim(MEMBER, ['fchmodat', dir, '775']).stderr).toBe('');
    expect(withShim(MEMBER, ['utimensat', file, '0']).stderr).toBe('');
  });

  it("removes itself from a child's LD_PRELOAD unless MAMBAPATCH_KEEP_PRELOAD=1", () => {
    const other = '/lib/x86_64-linux-gnu/libm.so.6';
    expect(run(MEMBER, ['child'], { LD_PRELOAD: SHIM }).stdout).toBe('LD_PRELOAD=<unset>\n');
    expect(run(MEMBER, ['child'], { LD_PRELOAD: `${other}:${SHIM}` }).stdout).toBe(`LD_PRELOAD=${other}\n`);
    expect(run(MEMBER, ['child'], { LD_PRELOAD: `${SHIM} ${other}` }).stdout).toBe(`LD_PRELOAD=${other}\n`);
    expect(run(MEMBER, ['child'], { LD_PRELOAD: `${SHIM}:${other}`, MAMBAPATCH_KEEP_PRELOAD: '1' }).stdout).toBe(
      `LD_PRELOAD=${SHIM}:${other}\n`,
    );
  });
});
