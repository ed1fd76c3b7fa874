/**
 * The shim's rule table through the supervisor: the shim's `calls` driver linked -static and -static-pie,
 * hooked, run as a second group member on a tree owned by another uid, must give exactly what the dynamic
 * driver gives with the shim preloaded (results, errno, modes, times, MAMBAPATCH_DEBUG lines); the owner's
 * and root's calls exactly what the unhooked program gives.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { MEMBER, OWNER } from '../helpers/users.js';
import { buildBinaries, runTarget, shimFile, TARGETS } from '../shim/fixtures.js';
import { MODE_FUNCTIONS, MODES, OWNER_CASES, TIME_FUNCTIONS, ruleTree } from '../shim/rule-table.js';
import { drivers, type Program } from './fixtures.js';

const t = TARGETS.x86_64;
const needs = process.arch === 'x64' ? missing({ root: true, tools: ['gcc', 'setpriv'] }) : 'native suite runs on x86_64';
const ROOT_USER = { uid: 0, gid: 0 };
/** The shim's answers, by request: the same for both kinds, so asked once. */
const shimAnswers = new Map<string, string>();

describe.skipIf(needs).each(['static', 'static-pie'] as const)('supervisor: the shim rules, %s', (kind) => {
  let calls: Program;
  let dynamicCalls: string;
  const tree = ruleTree(`sup-rules-${kind}`);
  const node = tree.node;
  beforeAll(() => {
    calls = drivers(t, kind).calls;
    dynamicCalls = buildBinaries(t).calls;
    tree.create();
  });
  afterAll(() => tree.cleanup());
  const hooked = (who: typeof MEMBER, args: string[], env: Record<string, string> = {}) => runTarget(t, who, calls.hooked, args, env);
  const plain = (who: typeof MEMBER, args: string[], env: Record<string, string> = {}) => runTarget(t, who, calls.plain, args, env);
  const shim = (args: string[], env: Record<string, string> = {}) =>
    runTarget(t, MEMBER, dynamicCalls, args, { LD_PRELOAD: shimFile('x86_64'), ...env });
  const modeOf = (p: string) => fs.statSync(p).mode & 0o7777;

  it('every mode rule through chmod, fchmodat and fchmod: as the shim, and the mode never changes', () => {
    for (const fn of MODE_FUNCTIONS) {
      for (const [k, cur, req, expected] of MODES) {
        const label = `${fn} ${k} ${cur.toString(8)} -> ${req.toString(8)}`;
        if (!shimAnswers.has(label)) shimAnswers.set(label, shim([fn, node(k, cur), req.toString(8)]).stdout);
        expect(shimAnswers.get(label), `${label} shim`).toBe(`${expected}\n`);
        const b = node(k, cur);
        expect(hooked(MEMBER, [fn, b, req.toString(8)]).stdout, label).toBe(shimAnswers.get(label));
        expect(modeOf(b), label).toBe(cur);
      }
    }
  });

  it('every timestamp function: near now becomes a touch, a week away stays EPERM, as the shim', () => {
    for (const fn of TIME_FUNCTIONS) {
      const p = node('file', 0o664);
      fs.utimesSync(p, 1_000_000, 1_000_000);
      expect(plain(MEMBER, [fn, p, '0']).stdout, fn).toBe('rc=-1 errno=EPERM\n');
      for (const off of ['604800', '-604800']) expect(hooked(MEMBER, [fn, p, off]).stdout, `${fn} ${off}`).toBe(shim([fn, p, off]).stdout);
      expect(fs.statSync(p).mtimeMs).toBe(1_000_000_000);
      expect(hooked(MEMBER, [fn, p, '3']).stdout, fn).toBe('rc=0 errno=0\n');
      expect(Math.abs(fs.statSync(p).mtimeMs - Date.now()), fn).toBeLessThan(5_000);
    }
  });

  it('MAMBAPATCH_TIME_WINDOW; errno kept (ENOENT, EACCES) as the shim', () => {
    const p = node('file', 0o664);
    const ro = node('file', 0o644);
    const missingFile = path.join(tree.dir(), 'no-such-file');
    const cases: Array<[string[], Record<string, string>]> = [
      [['utimensat', p, '60'], {}],
      [['utimensat', p, '60'], { MAMBAPATCH_TIME_WINDOW: '120' }],
      [['utimensat', p, '0'], { MAMBAPATCH_TIME_WINDOW: '0' }],
      [['chmod', missingFile, '775'], {}],
      [['utimensat', missingFile, '0'], {}],
      [['touch', ro], {}],
      [['utimensat', ro, '0'], {}],
    ];
    for (const [args, env] of cases) expect(hooked(MEMBER, args, env).stdout, args.join(' ')).toBe(shim(args, env).stdout);
  });

  it('MAMBAPATCH_DEBUG=1: the lines the shim prints, nothing without it', () => {
    const dir = node('dir', 0o2775);
    const file = node('file', 0o664);
    const debug = { MAMBAPATCH_DEBUG: '1' };
    for (const args of [['fchmodat', dir, '775'], ['chmod', dir, '2775'], ['utimensat', file, '0']]) {
      const h = hooked(MEMBER, args, debug);
      expect(h.stderr, args.join(' ')).toBe(shim(args, debug).stderr);
      expect(h.stderr).toMatch(/^mambapatch: /);
    }
    expect(hooked(MEMBER, ['fchmod', dir, '775'], debug).stderr).toMatch(
      /^mambapatch: fchmod\(fd \d+, 0775\): refused \(EPERM\); current mode 2775 already allows it: reporting success\n$/,
    );
    expect(hooked(MEMBER, ['utimensat', file, '604800'], debug).stderr).toBe('');
    expect(hooked(MEMBER, ['fchmodat', dir, '775']).stderr).toBe('');
  });

  it("the owner's and root's calls behave exactly as unhooked", () => {
    for (const who of [OWNER, ROOT_USER]) {
      for (const [fn, k, mode, arg] of OWNER_CASES) {
        const a = node(k, mode);
        const b = node(k, mode);
        const before = plain(who, [fn, a, arg]);
        const after = hooked(who, [fn, b, arg], { MAMBAPATCH_DEBUG: '1' });
        expect(after, `${who.uid} ${fn} ${arg}`).toEqual(before);
        expect(fs.statSync(b).mode).toBe(fs.statSync(a).mode);
        if (fn.includes('utime')) expect(Math.abs(fs.statSync(b).mtimeMs - fs.statSync(a).mtimeMs)).toBeLessThan(5_000);
      }
    }
  });
});
