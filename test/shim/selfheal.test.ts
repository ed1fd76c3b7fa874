/**
 * The shim's half of self-healing (issue 5): at exit, if a file listed in <prefix>/.mambapatch/watch
 * was replaced during the process, <prefix>/.mambapatch/hook.sh runs once, with its output on stderr,
 * without the shim in its environment, and without changing the exit status; never otherwise, and
 * never from an untrusted state directory.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { GROUP, MEMBER, OWNER } from '../helpers/users.js';
import { buildBinaries, makePrefix, ownTree, runTarget, shimFile, TARGETS } from './fixtures.js';

const t = TARGETS.x86_64;
const needs = process.arch === 'x64' ? missing({ root: true, tools: ['gcc', 'setpriv'] }) : 'native suite runs on x86_64';

describe.skipIf(needs)('shim self-heal hook', () => {
  let tmp: { dir: string; cleanup: () => void } | undefined;
  afterEach(() => tmp?.cleanup());

  /** A prefix with the shim, a watched lib/libmamba.so.4, a replacement for it, and a counting hook. */
  function setup(opts: { hookMode?: number; stateMode?: number } = {}) {
    tmp = worldTmp('shim-heal');
    const prefix = makePrefix(path.join(tmp.dir, 'prefix'), { shim: shimFile('x86_64') });
    const lib = path.join(prefix, 'lib/libmamba.so.4');
    fs.writeFileSync(lib, 'old');
    fs.writeFileSync(`${lib}.new`, 'new');
    const counter = path.join(tmp.dir, 'counter');
    fs.writeFileSync(counter, '');
    fs.chmodSync(counter, 0o666);
    const state = path.join(prefix, '.mambapatch');
    fs.mkdirSync(state);
    fs.writeFileSync(
      path.join(state, 'hook.sh'),
      `echo "run NO_HOOK=$MAMBAPATCH_NO_HOOK PRELOAD=\${LD_PRELOAD-unset}" >> ${counter}\necho "hook output"\n`,
    );
    fs.writeFileSync(path.join(state, 'watch'), `${lib}\n\nrelative/ignored\n`);
    ownTree(prefix);
    for (const f of ['lib/libmamba.so.4', 'lib/libmamba.so.4.new']) fs.chmodSync(path.join(prefix, f), 0o664);
    fs.chmodSync(state, opts.stateMode ?? 0o755);
    fs.chmodSync(path.join(state, 'hook.sh'), opts.hookMode ?? 0o644);
    fs.chmodSync(path.join(state, 'watch'), 0o644);
    const calls = buildBinaries(t).calls;
    const run = (args: string[], env: Record<string, string> = {}) =>
      runTarget(t, MEMBER, calls, args, { LD_PRELOAD: path.join(prefix, 'lib/libmambapatch.so'), ...env });
    const runs = () => fs.readFileSync(counter, 'utf8');
    return { prefix, lib, state, run, runs };
  }

  it('runs the hook exactly once at exit when a watched file was replaced, keeping the exit status', () => {
    const { prefix, lib, run, runs } = setup();
    const r = run(['replace', `${lib}.new`, lib, '7']);
    expect(r.status).toBe(7);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `mambapatch: ${lib} was replaced; re-applying the patch with ${prefix}/.mambapatch/hook.sh\nhook output\n`,
    );
    expect(runs()).toBe('run NO_HOOK=1 PRELOAD=unset\n');
  });

  it('never runs the hook when nothing was replaced', () => {
    const { prefix, run, runs } = setup();
    const r = run(['touch', path.join(prefix, 'pkgs/cache/497deca9.json')]);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, 'rc=0 errno=0\n', '']);
    expect(runs()).toBe('');
  });

  it('never runs an untrusted hook (group-writable hook.sh or state directory)', () => {
    for (const opts of [{ hookMode: 0o664 }, { stateMode: 0o775 }]) {
      const { lib, run, runs } = setup(opts);
      const r = run(['replace', `${lib}.new`, lib, '3']);
      expect([r.status, r.stderr]).toEqual([3, '']);
      expect(runs()).toBe('');
      tmp?.cleanup();
    }
  });

  it('never runs with MAMBAPATCH_NO_HOOK=1, nor from a hook owned by another user', () => {
    const a = setup();
    const r = a.run(['replace', `${a.lib}.new`, a.lib, '0'], { MAMBAPATCH_NO_HOOK: '1' });
    expect([r.status, r.stderr, a.runs()]).toEqual([0, '', '']);
    tmp?.cleanup();
    const b = setup();
    fs.chownSync(path.join(b.state, 'hook.sh'), MEMBER.uid, GROUP); // neither root nor the shim's owner (OWNER)
    const r2 = b.run(['replace', `${b.lib}.new`, b.lib, '0']);
    expect([r2.status, r2.stderr, b.runs()]).toEqual([0, '', '']);
    expect(fs.statSync(path.join(b.prefix, 'lib/libmambapatch.so')).uid).toBe(OWNER.uid);
  });
});
