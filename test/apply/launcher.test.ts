/** The launcher: literal quoting, LD_PRELOAD hygiene, argv[0], both conda shebang forms, the marker. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkPreloadable, LAUNCHER_MARKER, originalName, renderLauncher } from '../../src/launcher/launcher.js';
import { shQuote } from '../../src/shell.js';
import { parseInterpreter } from '../../src/launcher/shebang.js';
import { consoleScript } from '../../src/demo/prefix.js';
import { cachedBuild } from '../helpers/build.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';

const tmp = worldTmp('launcher');
afterAll(() => tmp.cleanup());

describe('launcher text', () => {
  it('quotes every path as a literal', () => {
    expect(shQuote(`it's $HOME "x"`)).toBe(`'it'\\''s $HOME "x"'`);
    const text = renderLauncher({ shim: '/p/lib/libmambapatch.so', original: `/p q/bin/.mamba.mambapatch-orig`, elf: false, interpreter: { path: "/p'q/bin/python", form: 'shebang' } });
    expect(text.split('\n')[1]).toBe(LAUNCHER_MARKER);
    expect(text).toContain(`exec '/p'\\''q/bin/python' -c `);
    expect(text).toMatch(/^#!\/bin\/sh\n/);
  });
  it('refuses a shim path LD_PRELOAD cannot carry, naming the needed method', () => {
    expect(() => checkPreloadable('/opt/my conda/lib/libmambapatch.so')).toThrow(/--method needed/);
    expect(() => checkPreloadable('/opt/a:b/lib/libmambapatch.so')).toThrow(/space or a colon/);
  });
  it('keeps the original under a predictable hidden name', () => {
    expect(originalName('bin/mamba')).toBe('bin/.mamba.mambapatch-orig');
  });
  it('reads both conda shebang forms', () => {
    expect(parseInterpreter('#!/opt/conda/bin/python -s\nimport x')).toEqual({ path: '/opt/conda/bin/python', arg: '-s', form: 'shebang' });
    const long = `/opt/${'x'.repeat(130)}/with space/bin/python`;
    const script = consoleScript(long);
    expect(script.startsWith("#!/bin/sh\n'''exec' ")).toBe(true);
    expect(parseInterpreter(script)).toEqual({ path: long, form: 'sh-exec' });
  });
});

describe.skipIf(missing({ tools: ['gcc'] }))('launcher, run for real', () => {
  const dummy = () =>
    cachedBuild({ name: 'libdummy.so', compiler: 'gcc', args: ['-shared', '-fPIC', '-x', 'c'], sources: ['/dev/null'] });
  const printer = () => {
    const src = path.join(tmp.dir, 'printer.c');
    fs.writeFileSync(src, '#include <stdio.h>\n#include <stdlib.h>\nint main(int c,char**v){printf("%s|%s|%d\\n",v[0],getenv("LD_PRELOAD"),c);return 0;}\n');
    return cachedBuild({ name: 'printer', compiler: 'gcc', args: [], sources: [src] });
  };

  it('Python original (long, spaced prefix: the sh-exec form): argv[0], arguments, LD_PRELOAD first, deduplicated, no empty segment', () => {
    const prefix = path.join(tmp.dir, `it's a ${'long-'.repeat(26)}prefix`);
    fs.mkdirSync(path.join(prefix, 'bin'), { recursive: true });
    fs.mkdirSync(path.join(prefix, 'lib'));
    fs.symlinkSync('/usr/bin/python3', path.join(prefix, 'bin', 'python'));
    const shimDir = path.join(tmp.dir, 'shimdir');
    fs.mkdirSync(shimDir, { recursive: true });
    const shim = path.join(shimDir, 'libmambapatch.so');
    fs.copyFileSync(dummy(), shim);
    const orig = path.join(prefix, 'bin', '.mamba.mambapatch-orig');
    const python = path.join(prefix, 'bin', 'python');
    const script = consoleScript(python).replace(
      'from mamba.mamba import main',
      'import json, os\ndef main():\n    print(json.dumps([sys.argv, os.environ.get("LD_PRELOAD"), __file__, sys.path[0], __name__]))',
    );
    expect(script.startsWith('#!/bin/sh')).toBe(true);
    fs.writeFileSync(orig, script, { mode: 0o755 });
    const launcher = path.join(prefix, 'bin', 'mamba');
    fs.writeFileSync(launcher, renderLauncher({ shim, original: orig, elf: false, interpreter: parseInterpreter(script) }), { mode: 0o755 });
    const other = dummy();
    const r = spawnSync(launcher, ['install', "a b'c"], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LD_PRELOAD: ` :${other}::${shim} ` } });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([[launcher, 'install', "a b'c"], `${shim}:${other}`, orig, path.join(prefix, 'bin'), '__main__']);
    const none = spawnSync(launcher, [], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(JSON.parse(none.stdout)[1]).toBe(shim);
  });

  it('ELF original: exec -a keeps argv[0]', () => {
    const dir = path.join(tmp.dir, 'elf', 'bin');
    fs.mkdirSync(dir, { recursive: true });
    const orig = path.join(dir, '.mamba.mambapatch-orig');
    fs.copyFileSync(printer(), orig);
    fs.chmodSync(orig, 0o755);
    const shim = dummy();
    const launcher = path.join(dir, 'mamba');
    fs.writeFileSync(launcher, renderLauncher({ shim, original: orig, elf: true }), { mode: 0o755 });
    const r = spawnSync(launcher, ['x', 'y'], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin', LD_PRELOAD: shim } });
    expect(r.stdout.trim()).toBe(`${launcher}|${shim}|3`);
  });
});
