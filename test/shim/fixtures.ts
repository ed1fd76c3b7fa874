/**
 * Fixtures for the shim tests: per architecture, the stand-in libmamba (both majors, with and without
 * the shim as a DT_NEEDED), the 2.x executable (plain, and with the shim as its first DT_NEEDED), a
 * dlopen host and the `calls` driver, all compiled once (cachedBuild) with the host or cross compilers;
 * and prefixes laid out as a shared install: owner OWNER, group GROUP, group-writable, setgid dirs.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { shareWith } from '../../src/demo/prefix.js';
import { cachedBuild } from '../helpers/build.js';
import { GROUP, OWNER, runAs, type RunResult } from '../helpers/users.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DEMO = path.join(ROOT, 'templates/demo');
const HERE = path.join(ROOT, 'test/shim');

export interface Target {
  arch: 'x86_64' | 'aarch64' | 'ppc64le';
  gcc: string;
  gxx: string;
  /** How to run a binary of this arch: [] natively, else qemu-user with the cross sysroot. */
  runner: string[];
}

export const TARGETS: Record<Target['arch'], Target> = {
  x86_64: { arch: 'x86_64', gcc: 'gcc', gxx: 'g++', runner: [] },
  aarch64: { arch: 'aarch64', gcc: 'aarch64-linux-gnu-gcc', gxx: 'aarch64-linux-gnu-g++', runner: ['qemu-aarch64', '-L', '/usr/aarch64-linux-gnu'] },
  ppc64le: {
    arch: 'ppc64le',
    gcc: 'powerpc64le-linux-gnu-gcc',
    gxx: 'powerpc64le-linux-gnu-g++',
    runner: ['qemu-ppc64le', '-L', '/usr/powerpc64le-linux-gnu'],
  },
};

export const shimFile = (arch: string) => path.join(ROOT, 'shims', arch, 'libmambapatch.so');

export interface Binaries {
  /** libmamba stand-in by major, plain and with the shim as DT_NEEDED; all have SONAME libmamba.so.4 */
  lib: Record<1 | 2, { plain: string; withShim: string }>;
  exe: { plain: string; shimFirst: string };
  dlopenHost: string;
  calls: string;
  /** dlopen()s the shim-carrying library, then calls fchmodat itself and through a library loaded later */
  lateHost: string;
  lateLib: string;
  /** a plain C library with the shim as DT_NEEDED: unloadable, unlike the C++ stand-in */
  carrier: string;
}

export function buildBinaries(t: Target): Binaries {
  const shim = shimFile(t.arch);
  const lib = (major: 1 | 2, withShim: boolean) =>
    cachedBuild({
      name: 'libmamba.so.4',
      compiler: t.gxx,
      args: ['-shared', '-fPIC', '-O1', '-std=c++17', `-DSTANDIN_MAJOR=${major}`, '-Wl,-soname,libmamba.so.4', '-Wl,-rpath,$ORIGIN', '-Wl,--no-as-needed'],
      // the shim on the link line: a DT_NEEDED of the library
      sources: [path.join(DEMO, 'libmamba_standin.cpp'), ...(withShim ? [shim] : [])],
    });
  const plain1 = lib(1, false);
  const exe = (shimFirst: boolean) =>
    cachedBuild({
      name: 'mamba',
      compiler: t.gxx,
      args: ['-O1', '-std=c++17', '-Wl,-rpath,$ORIGIN/../lib', '-Wl,--no-as-needed'],
      // the shim first on the link line: the executable's first DT_NEEDED
      sources: [path.join(DEMO, 'mamba2_main.cpp'), ...(shimFirst ? [shim] : [])],
      after: [plain1],
    });
  return {
    lib: { 1: { plain: plain1, withShim: lib(1, true) }, 2: { plain: lib(2, false), withShim: lib(2, true) } },
    exe: { plain: exe(false), shimFirst: exe(true) },
    dlopenHost: cachedBuild({ name: 'dlopen-host', compiler: t.gcc, args: ['-O1'], sources: [path.join(HERE, 'dlopen_host.c')], after: ['-ldl'] }),
    calls: cachedBuild({ name: 'calls', compiler: t.gcc, args: ['-O1'], sources: [path.join(HERE, 'calls.c')] }),
    lateHost: cachedBuild({
      name: 'late-host',
      compiler: t.gcc,
      args: ['-O1', '-Wl,-z,relro,-z,now'],
      sources: [path.join(HERE, 'late_host.c')],
      after: ['-ldl'],
    }),
    lateLib: cachedBuild({
      name: 'liblate.so',
      compiler: t.gcc,
      args: ['-O1', '-shared', '-fPIC', '-Wl,-soname,liblate.so'],
      sources: [path.join(HERE, 'late_lib.c')],
    }),
    carrier: cachedBuild({
      name: 'libcarrier.so',
      compiler: t.gcc,
      args: ['-O1', '-shared', '-fPIC', '-Wl,-soname,libcarrier.so', '-Wl,-rpath,$ORIGIN', '-Wl,--no-as-needed'],
      sources: [path.join(HERE, 'late_lib.c'), shim],
    }),
  };
}

export function ownTree(p: string): void {
  fs.chownSync(p, OWNER.uid, GROUP);
  if (fs.lstatSync(p).isDirectory()) for (const n of fs.readdirSync(p)) ownTree(path.join(p, n));
}

/**
 * A shared prefix under `dir`: bin/mamba, lib/libmamba.so.4, lib/libmambapatch.so, pkgs/cache (2775)
 * with the channel index, all owned by OWNER:GROUP, group-writable, setgid directories.
 */
export function makePrefix(dir: string, files: { exe?: string; lib?: string; shim?: string }): string {
  const prefix = dir;
  for (const d of ['bin', 'lib', 'pkgs/cache']) fs.mkdirSync(path.join(prefix, d), { recursive: true });
  if (files.exe) fs.copyFileSync(files.exe, path.join(prefix, 'bin/mamba'));
  if (files.lib) fs.copyFileSync(files.lib, path.join(prefix, 'lib/libmamba.so.4'));
  if (files.shim) fs.copyFileSync(files.shim, path.join(prefix, 'lib/libmambapatch.so'));
  fs.writeFileSync(path.join(prefix, 'pkgs/cache/497deca9.json'), '{}\n');
  shareWith(prefix, OWNER);
  return prefix;
}

/** Runs a binary of the target as `who` (through qemu for foreign arches); env goes to the program. */
export function runTarget(
  t: Target,
  who: { uid: number; gid: number },
  file: string,
  args: string[],
  env: Record<string, string> = {},
): RunResult {
  const base = { PATH: '/usr/bin:/bin', LANG: 'C' };
  // Through env(1): an LD_PRELOAD given to setpriv would be stripped by the shim inside setpriv itself.
  const assign = (e: Record<string, string>) => Object.entries(e).map(([k, v]) => `${k}=${v}`);
  if (t.runner.length === 0) return runAs(who, '/usr/bin/env', [...assign(env), file, ...args], { env: base });
  // LD_PRELOAD must reach the guest only (qemu itself is a host program).
  const { LD_PRELOAD, ...rest } = env;
  const pre = LD_PRELOAD !== undefined ? ['-E', `LD_PRELOAD=${LD_PRELOAD}`] : [];
  return runAs(who, '/usr/bin/env', [...assign(rest), ...t.runner, ...pre, file, ...args], { env: base, timeout: 120_000 });
}

export function readelf(args: string[]): string {
  const r = spawnSync('readelf', args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`readelf ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
