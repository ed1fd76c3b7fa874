/**
 * Builds a throwaway conda prefix with stand-ins for mamba installs, laid out as the real ones are
 * (conda-meta records, files hard-linked from pkgs/, a shared pkgs/cache). Used by `mambapatch demo` and by
 * the tests (which pass their cached compiler). The stand-ins come from templates/demo and need only g++.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError } from '../errors.js';
import { TEMPLATES_DIR } from '../package.js';

export interface CompileRequest {
  name: string;
  args: string[];
  sources: string[];
  after?: string[];
}
/** Compiles and returns the output path. */
export type Compile = (req: CompileRequest) => string;

export interface PrefixSpec {
  /** mamba 1.x: a Python console script bin/mamba and lib/libmamba.so.2 (libmamba 1.1.0 by default). */
  mamba1?: boolean;
  /** mamba 2.x: an ELF bin/mamba linked to lib/libmamba.so.4 (2.3.0 by default). */
  mamba2?: boolean;
  micromamba?: 'dynamic' | 'static' | 'static-pie';
  /** The libmamba generation the micromamba stand-in mimics (default 2; 1: the explicit-time touch of 1.1.x). */
  micromambaMajor?: 1 | 2;
  versions?: { mamba1?: string; mamba2?: string; micromamba?: string };
  /** Owner and group of everything (root only); directories get setgid and group write. */
  owner?: { uid: number; gid: number };
  /** Write conda-meta records (default true). */
  condaMeta?: boolean;
}


/**
 * A compiler that caches its outputs by command line and source contents under `cacheDir` (world-readable,
 * so a second uid can run them). Concurrent builds of the same output are safe (a per-process temporary
 * name, then a rename).
 */
export function cachedCompiler(cacheDir: string, compiler = 'g++'): Compile {
  return (req) => {
    const h = createHash('sha256');
    h.update([compiler, ...req.args, '--', ...(req.after ?? [])].join('\0'));
    for (const s of req.sources) h.update(fs.readFileSync(s));
    const dir = path.join(cacheDir, h.digest('hex').slice(0, 16));
    const out = path.join(dir, req.name);
    if (fs.existsSync(out)) return out;
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
    fs.chmodSync(cacheDir, 0o755);
    fs.chmodSync(dir, 0o755);
    const tmp = `${out}.tmp${process.pid}`;
    try {
      execFileSync(compiler, [...req.args, ...req.sources, ...(req.after ?? []), '-o', tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      const err = e as { code?: string; stderr?: Buffer };
      if (err.code === 'ENOENT') throw new MambapatchError(`${compiler} is needed to build the stand-ins (apt install ${compiler})`);
      throw new MambapatchError(`${compiler} failed: ${String(err.stderr ?? e).split('\n')[0]}`, { file: req.sources[0] });
    }
    fs.renameSync(tmp, out);
    return out;
  };
}

export interface StandIns {
  libmamba1: string;
  libmamba2: string;
  mamba2: string;
  micromambaDynamic: string;
  micromambaStatic: string;
  micromambaStaticPie: string;
}

type Needed = Partial<StandIns> & Omit<StandIns, 'micromambaStatic' | 'micromambaStaticPie'>;

export function buildStandIns(compile: Compile, which: { static?: 'static' | 'static-pie'; microMajor?: 1 | 2 } = {}): Needed {
  const t = path.join(TEMPLATES_DIR, 'demo');
  const standin = path.join(t, 'libmamba_standin.cpp');
  const main2 = path.join(t, 'mamba2_main.cpp');
  const common = ['-std=c++17', '-O1'];
  const libmamba1 = compile({ name: 'libmamba.so.2', args: [...common, '-shared', '-fPIC', '-DSTANDIN_MAJOR=1', '-Wl,-soname,libmamba.so.2'], sources: [standin] });
  const libmamba2 = compile({ name: 'libmamba.so.4', args: [...common, '-shared', '-fPIC', '-DSTANDIN_MAJOR=2', '-Wl,-soname,libmamba.so.4'], sources: [standin] });
  const mamba2 = compile({ name: 'mamba', args: [...common, '-Wl,-rpath,$ORIGIN/../lib'], sources: [main2, libmamba2] });
  const micro = [...common, `-DSTANDIN_MAJOR=${which.microMajor ?? 2}`];
  const micromambaDynamic = compile({ name: 'micromamba', args: [...micro, '-static-libstdc++', '-static-libgcc'], sources: [main2, standin] });
  const out: Needed = { libmamba1, libmamba2, mamba2, micromambaDynamic };
  if (which.static === 'static') out.micromambaStatic = compile({ name: 'micromamba', args: [...micro, '-static'], sources: [main2, standin] });
  if (which.static === 'static-pie') out.micromambaStaticPie = compile({ name: 'micromamba', args: [...micro, '-fPIE', '-static-pie'], sources: [main2, standin] });
  return out;
}

export function pythonVersionDir(): string {
  return execFileSync('/usr/bin/python3', ['-c', 'import sys;print("python%d.%d"%sys.version_info[:2])'], { encoding: 'utf8' }).trim();
}

/** The conda console script conda writes for mamba 1.x's entry point. */
export function consoleScript(python: string): string {
  const shebang = python.length + 2 > 127 || python.includes(' ') ? `#!/bin/sh\n'''exec' "${python}" "$0" "$@" #'''` : `#!${python}`;
  return `${shebang}
# -*- coding: utf-8 -*-
import re
import sys

from mamba.mamba import main

if __name__ == '__main__':
    sys.argv[0] = re.sub(r'(-script\\.pyw|\\.exe)?$', '', sys.argv[0])
    sys.exit(main())
`;
}

/** Builds the prefix at `prefix` (which must not exist yet). */
export function buildPrefix(prefix: string, spec: PrefixSpec, compile: Compile): void {
  const bins = buildStandIns(compile, { static: spec.micromamba === 'dynamic' ? undefined : spec.micromamba, microMajor: spec.micromambaMajor });
  const v = { mamba1: '1.1.0', mamba2: '2.3.0', micromamba: spec.micromambaMajor === 1 ? '1.1.0' : '2.3.0', ...spec.versions };
  fs.mkdirSync(prefix, { mode: 0o755 });
  for (const d of ['bin', 'lib', 'condabin', 'conda-meta', 'pkgs/cache']) fs.mkdirSync(path.join(prefix, d), { recursive: true });
  const records: { name: string; version: string; files: { rel: string; from?: string; text?: string; mode?: number }[] }[] = [];
  if (spec.mamba1) {
    const py = pythonVersionDir();
    fs.symlinkSync('/usr/bin/python3', path.join(prefix, 'bin', 'python'));
    fs.writeFileSync(path.join(prefix, 'pyvenv.cfg'), 'home = /usr/bin\ninclude-system-site-packages = false\n');
    const site = `lib/${py}/site-packages/mamba`;
    records.push({ name: 'libmamba', version: v.mamba1, files: [{ rel: 'lib/libmamba.so.2', from: bins.libmamba1, mode: 0o775 }] });
    records.push({
      name: 'mamba',
      version: v.mamba1,
      files: [
        { rel: 'bin/mamba', text: consoleScript(path.join(prefix, 'bin', 'python')), mode: 0o775 },
        { rel: `${site}/__init__.py`, text: '' },
        { rel: `${site}/mamba.py`, from: path.join(TEMPLATES_DIR, 'demo', 'mamba1_main.py') },
      ],
    });
    fs.symlinkSync('../bin/mamba', path.join(prefix, 'condabin', 'mamba'));
  }
  if (spec.mamba2) {
    records.push({ name: 'libmamba', version: v.mamba2, files: [{ rel: 'lib/libmamba.so.4', from: bins.libmamba2, mode: 0o775 }] });
    records.push({ name: 'mamba', version: v.mamba2, files: [{ rel: 'bin/mamba', from: bins.mamba2, mode: 0o775 }] });
  }
  if (spec.micromamba) {
    const from = { dynamic: bins.micromambaDynamic, static: bins.micromambaStatic!, 'static-pie': bins.micromambaStaticPie! }[spec.micromamba];
    records.push({ name: 'micromamba', version: v.micromamba, files: [{ rel: 'bin/micromamba', from, mode: 0o775 }] });
  }
  for (const r of records) {
    // Like conda: the package is extracted into pkgs/<dist>/ and its files hard-linked into the prefix
    // (a file with the prefix inside it, like a console script, is a copy).
    const dist = `${r.name}-${r.version}-h0_0`;
    for (const f of r.files) {
      const inPkgs = path.join(prefix, 'pkgs', dist, f.rel);
      const inPrefix = path.join(prefix, f.rel);
      fs.mkdirSync(path.dirname(inPkgs), { recursive: true });
      fs.mkdirSync(path.dirname(inPrefix), { recursive: true });
      if (f.text !== undefined) fs.writeFileSync(inPrefix, f.text, { mode: f.mode ?? 0o664 });
      else {
        fs.copyFileSync(f.from!, inPkgs);
        fs.chmodSync(inPkgs, f.mode ?? 0o664);
        fs.linkSync(inPkgs, inPrefix);
      }
      fs.chmodSync(inPrefix, f.mode ?? 0o664);
    }
    if (spec.condaMeta !== false) {
      const rec = { name: r.name, version: r.version, build: 'h0_0', build_number: 0, channel: 'https://conda.anaconda.org/conda-forge/linux-64', files: r.files.map((f) => f.rel) };
      fs.writeFileSync(path.join(prefix, 'conda-meta', `${dist}.json`), JSON.stringify(rec, null, 2) + '\n');
    }
  }
  if (spec.mamba2 || spec.mamba1) {
    const so = spec.mamba2 ? 'libmamba.so.4' : 'libmamba.so.2';
    fs.symlinkSync(so, path.join(prefix, 'lib', 'libmamba.so'));
  }
  fs.writeFileSync(path.join(prefix, 'pkgs', 'cache', '497deca9.json'), '{"info": {"subdir": "linux-64"}, "packages": {}}\n');
  if (spec.owner) shareWith(prefix, spec.owner);
}

/** What a shared install looks like: one owner, the group can write, directories setgid. */
export function shareWith(prefix: string, owner: { uid: number; gid: number }): void {
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    fs.lchownSync(p, owner.uid, owner.gid);
    if (st.isSymbolicLink()) return;
    if (st.isDirectory()) {
      fs.chmodSync(p, 0o2775);
      for (const n of fs.readdirSync(p)) walk(path.join(p, n));
    } else {
      fs.chmodSync(p, (st.mode & 0o777) | 0o020);
    }
  };
  walk(prefix);
}
