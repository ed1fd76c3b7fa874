/**
 * The supervisor blob as built and shipped: ABI v1 header for each architecture, flat and relocation-free
 * (the build links it twice and compares), rebuilt only on change, compiled on demand into the user cache
 * when a package has no prebuilt blob, and a one-line error naming the package to install without a
 * compiler.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VERSION } from '../../src/package.js';
import { HOOK_DELTA_OFFSET, HOOK_MAGIC, parseHookHeader } from '../../src/elf/hook-header.js';
import { hookBlob, prebuiltHook } from '../../src/supervisor/blob.js';
import { buildHook, HOOK_FILENAME } from '../../src/supervisor/build.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';
import { ROOT, TARGETS } from '../shim/fixtures.js';

describe('the shipped supervisor blobs', () => {
  for (const arch of ['x86_64', 'aarch64', 'ppc64le'] as const) {
    it.skipIf(missing({ tools: [TARGETS[arch].gcc] }))(`${arch}: ABI v1 header, id, size, entry, delta 0`, () => {
      const bytes = new Uint8Array(fs.readFileSync(prebuiltHook(arch)));
      expect(Buffer.from(bytes.subarray(0, 16)).toString('latin1')).toBe(HOOK_MAGIC);
      const h = parseHookHeader(bytes, true)!;
      expect(HOOK_DELTA_OFFSET).toBe(24);
      expect(h).toEqual({
        abi: 1,
        entryOffset: h.entryOffset,
        delta: 0n,
        size: bytes.length,
        id: `mambapatch-hook version=${VERSION} arch=${arch}`,
        version: VERSION,
        arch,
      });
      expect(h.entryOffset).toBeGreaterThanOrEqual(104);
      expect(h.entryOffset % 4).toBe(0);
      expect(bytes.length % 16).toBe(0);
      const dv = new DataView(bytes.buffer, bytes.byteOffset);
      expect(dv.getBigInt64(24, true)).toBe(0n);
      expect(dv.getUint32(36, true)).toBe(0);
      expect(hookBlob(arch)).toMatchObject({ bytes, path: prebuiltHook(arch), version: VERSION });
    });
  }

  it('parseHookHeader refuses what is not a blob of ABI 1', () => {
    const good = new Uint8Array(fs.readFileSync(prebuiltHook('x86_64')));
    expect(parseHookHeader(good.subarray(0, 100), true)).toBeUndefined();
    for (const [at, v] of [[0, 0x6d], [16, 2], [20, 8], [34, 0xff]] as const) {
      const bad = new Uint8Array(good);
      bad[at] = v;
      expect(parseHookHeader(bad, true), `byte ${at}`).toBeUndefined();
    }
    expect(() => hookBlob('s390x')).toThrow(/no supervisor blob for architecture "s390x"/);
  });
});

describe.skipIf(missing({ tools: ['gcc'] }))('building the blob', () => {
  const tmp = worldTmp('hook-build');
  afterAll(() => tmp.cleanup());

  it('rebuilds only when the version (or source, compiler, flags) changes', () => {
    const out = path.join(tmp.dir, 'x86_64', HOOK_FILENAME);
    expect(buildHook('x86_64', out, 'gcc', '9.9.9')).toBe(true);
    expect(buildHook('x86_64', out, 'gcc', '9.9.9')).toBe(false);
    expect(parseHookHeader(new Uint8Array(fs.readFileSync(out)), true)).toMatchObject({ version: '9.9.9', arch: 'x86_64' });
    expect(buildHook('x86_64', out, 'gcc', '9.9.10')).toBe(true);
  });

  it('a package without prebuilt blobs compiles one into the user cache; without a compiler names the package', () => {
    const pkg = path.join(tmp.dir, 'pkg');
    fs.mkdirSync(pkg);
    for (const d of ['dist', 'templates', 'package.json']) fs.cpSync(path.join(ROOT, d), path.join(pkg, d), { recursive: true });
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(pkg, 'node_modules'));
    const script = `import(${JSON.stringify(path.join(pkg, 'dist/src/supervisor/blob.js'))}).then((m) => {
      try { const b = m.hookBlob(process.argv[1]); console.log(b.path, b.bytes.length); } catch (e) { console.log(e.message); }
    })`;
    const run = (env: NodeJS.ProcessEnv, arch: string) => spawnSync(process.execPath, ['-e', script, arch], { encoding: 'utf8', env }).stdout;
    const cache = path.join(tmp.dir, 'cache');
    const built = path.join(cache, 'mambapatch', VERSION, 'x86_64', HOOK_FILENAME);
    expect(run({ PATH: process.env.PATH, XDG_CACHE_HOME: cache }, 'x86_64')).toBe(`${built} ${fs.statSync(built).size}\n`);
    expect(fs.readFileSync(built)).toEqual(fs.readFileSync(prebuiltHook('x86_64')));
    expect(run({ PATH: tmp.dir, XDG_CACHE_HOME: path.join(tmp.dir, 'cache2') }, 'aarch64')).toBe(
      `${path.join(pkg, 'shims/aarch64', HOOK_FILENAME)}: no prebuilt aarch64 supervisor blob in this mambapatch package and no ` +
        'compiler to build one: install aarch64-linux-gnu-gcc (Debian/Ubuntu: `apt-get install gcc-aarch64-linux-gnu ' +
        'libc6-dev-arm64-cross`), or install a mambapatch package that ships shims/aarch64\n',
    );
  });
});
