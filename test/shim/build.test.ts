/**
 * The shipped shims: loadable on glibc 2.17 (readelf -V), needing only libc (and libdl), no TLS, the
 * marker `shim info` reads; the build is redone only when something changed; the API and CLI.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SHIM_ARCHES, buildShim } from '../../src/shim/build.js';
import { SHIM_FILENAME, shimInfo, shimPath, shimVersion } from '../../src/shim/index.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { readelf, ROOT, shimFile, TARGETS } from './fixtures.js';

const CLI = path.join(ROOT, 'dist/src/cli.js');
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
const MACHINE = { x86_64: 'Advanced Micro Devices X86-64', aarch64: 'AArch64', ppc64le: 'PowerPC64' };
const WRAPPED = ['chmod', 'fchmod', 'fchmodat', 'futimens', 'futimes', 'futimesat', 'lutimes', 'utime', 'utimensat', 'utimes'];

function versionKey(v: string): number[] {
  return v.split('.').map(Number);
}
function newer(a: string, b: string): boolean {
  const x = versionKey(a), y = versionKey(b);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) > (y[i] ?? 0);
  return false;
}

describe('shipped shims', () => {
  for (const arch of SHIM_ARCHES) {
    describe.skipIf(missing({ tools: [TARGETS[arch].gcc, 'readelf'] }))(arch, () => {
      const file = shimFile(arch);
      it('needs nothing newer than GLIBC_2.17 and nothing beyond libc/libdl', () => {
        const versions = [...readelf(['-V', '-W', file]).matchAll(/GLIBC_([0-9.]+)/g)].map((m) => m[1]!);
        expect(versions.length).toBeGreaterThan(0);
        const max = versions.reduce((a, b) => (newer(b, a) ? b : a));
        expect(newer(max, '2.17'), `GLIBC_${max}`).toBe(false);
        if (arch === 'x86_64') expect(max).toBe('2.2.5');
        const needed = [...readelf(['-d', '-W', file]).matchAll(/\(NEEDED\).*\[(.*)\]/g)].map((m) => m[1]!);
        expect(needed.filter((n) => n !== 'libc.so.6' && n !== 'libdl.so.2')).toEqual([]);
        expect(readelf(['-h', file])).toContain(MACHINE[arch]);
      });
      it('has no TLS, no static-TLS flag, no fortify or stack-protector imports, and is never unloaded', () => {
        expect(readelf(['-l', '-W', file])).not.toMatch(/\bTLS\b/);
        expect(readelf(['-d', '-W', file])).not.toContain('STATIC_TLS');
        expect(readelf(['-d', '-W', file])).toMatch(/FLAGS_1.*NODELETE/); // patched GOTs point into it
        expect(readelf(['--dyn-syms', '-W', file])).not.toMatch(/_chk@|__stack_chk/);
      });
      it('exports exactly the wrapped functions and its marker', () => {
        const defined = readelf(['--dyn-syms', '-W', file])
          .split('\n')
          .map((l) => /\s(?:GLOBAL|WEAK)\s.*\s(UND|ABS|\d+)\s+(\S+)$/.exec(l))
          .filter((m): m is RegExpExecArray => m !== null && m[1] !== 'UND')
          .map((m) => m[2]!);
        expect(defined.sort()).toEqual([...WRAPPED, 'mambapatch_shim_id'].sort());
      });
      it('carries its architecture and version', () => {
        expect(shimInfo(file)).toEqual({ arch, version: shimVersion() });
        expect(shimPath(arch)).toBe(file);
      });
    });
  }
});

describe('dlopen/dlsym hand-over keeps the caller (a jump, not a call)', () => {
  const DISASM = { x86_64: ['objdump', /\tjmp\s+\*/], aarch64: ['aarch64-linux-gnu-objdump', /\tbr\t/] } as const;
  for (const [arch, [tool, jump]] of Object.entries(DISASM)) {
    it.skipIf(missing({ tools: [tool] }))(arch, () => {
      for (const fn of ['mp_dlopen', 'mp_dlsym']) {
        const r = spawnSync(tool, ['-d', `--disassemble=${fn}`, shimFile(arch)], { encoding: 'utf8' });
        expect(r.stdout, fn).toMatch(jump);
      }
    });
  }
});

describe.skipIf(missing({ tools: ['gcc'] }))('building', () => {
  const tmp = worldTmp('shim-build');
  afterAll(() => tmp.cleanup());
  it('rebuilds only when the version (or source, compiler, flags) changes', () => {
    const out = path.join(tmp.dir, 'x86_64', SHIM_FILENAME);
    expect(buildShim('x86_64', out, 'gcc', '9.9.9')).toBe(true);
    expect(buildShim('x86_64', out, 'gcc', '9.9.9')).toBe(false);
    expect(shimInfo(out)).toEqual({ arch: 'x86_64', version: '9.9.9' });
    expect(buildShim('x86_64', out, 'gcc', '9.9.10')).toBe(true);
    expect(shimInfo(out).version).toBe('9.9.10');
  });
});

describe.skipIf(missing({ tools: ['gcc'] }))('a package without prebuilt shims', () => {
  // a copy of the built package (dist, templates, package.json) with node_modules linked, and no shims/
  const tmp = worldTmp('shim-nobuilt');
  afterAll(() => tmp.cleanup());
  const pkg = path.join(tmp.dir, 'pkg');
  fs.mkdirSync(pkg);
  for (const d of ['dist', 'templates', 'package.json']) fs.cpSync(path.join(ROOT, d), path.join(pkg, d), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
  const run = (env: NodeJS.ProcessEnv, ...args: string[]) =>
    spawnSync(process.execPath, [path.join(pkg, 'dist/src/cli.js'), 'shim', 'path', ...args], { encoding: 'utf8', env });

  it('compiles the shim into the user cache with the host compiler', () => {
    const cache = path.join(tmp.dir, 'cache');
    const r = run({ PATH: process.env.PATH, XDG_CACHE_HOME: cache });
    const expected = path.join(cache, 'mambapatch', shimVersion(), 'x86_64', SHIM_FILENAME);
    expect([r.status, r.stdout, r.stderr]).toEqual([0, `${expected}\n`, '']);
    expect(shimInfo(expected)).toEqual({ arch: 'x86_64', version: shimVersion() });
  });

  it('without a compiler, says exactly what is missing (exit 1)', () => {
    const r = run({ PATH: tmp.dir, XDG_CACHE_HOME: path.join(tmp.dir, 'cache2') }, '--arch', 'aarch64');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `mambapatch: ${path.join(pkg, 'shims/aarch64', SHIM_FILENAME)}: no prebuilt aarch64 shim in this mambapatch package and no ` +
        'compiler to build one: install aarch64-linux-gnu-gcc (Debian/Ubuntu: `apt-get install gcc-aarch64-linux-gnu ' +
        'libc6-dev-arm64-cross`), or install a mambapatch package that ships shims/aarch64\n',
    );
  });
});

describe('shim API and CLI errors', () => {
  it('rejects files that are not shims, and unknown architectures', () => {
    expect(() => shimInfo('/bin/sh')).toThrow(/\/bin\/sh: not a mambapatch shim/);
    expect(() => shimInfo(path.join(ROOT, 'package.json'))).toThrow(/not an ELF file/);
    expect(() => shimInfo('/nonexistent/libmambapatch.so')).toThrow(/cannot read: ENOENT/);
    expect(() => shimPath('s390x')).toThrow(/no shim for architecture "s390x"/);
  });
  it('mambapatch shim path / info, with and without --json', () => {
    const file = shimFile('x86_64');
    const p = cli('shim', 'path', '--arch', 'x86_64');
    expect([p.status, p.stdout]).toEqual([0, `${file}\n`]);
    const pj = cli('shim', 'path', '--arch', 'aarch64', '--json');
    expect(JSON.parse(pj.stdout)).toEqual({ ok: true, arch: 'aarch64', version: shimVersion(), path: shimFile('aarch64') });
    const i = cli('shim', 'info', file);
    expect([i.status, i.stdout]).toEqual([0, `${file}: mambapatch shim ${shimVersion()} for x86_64\n`]);
    expect(JSON.parse(cli('shim', 'info', file, '--json').stdout)).toEqual({ ok: true, file, arch: 'x86_64', version: shimVersion() });
    const bad = cli('shim', 'info', '/bin/sh');
    expect([bad.status, bad.stderr]).toEqual([1, 'mambapatch: /bin/sh: not a mambapatch shim (no shim marker)\n']);
    expect(cli('shim', 'path', '--arch', 'mips').status).toBe(2);
    expect(fs.existsSync(file)).toBe(true);
  });
});
