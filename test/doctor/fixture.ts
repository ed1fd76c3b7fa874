/** A shared prefix as an administrator sets one up, built as root with the owner A and the group G. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GROUP, OWNER, runAs } from '../helpers/users.js';

export const DIRS = [
  '',
  'bin',
  'lib',
  'pkgs',
  'pkgs/cache',
  'conda-meta',
  // An extracted package the group can hard-link, and an environment holding it, as umask 002 leaves them.
  'pkgs/hello-1.0-0',
  'pkgs/hello-1.0-0/info',
  'pkgs/hello-1.0-0/bin',
  'envs',
  'envs/clean',
  'envs/clean/bin',
  'envs/clean/conda-meta',
];
export const FILES: Record<string, string> = {
  'pkgs/cache/497deca9.json': '{"info": {"subdir": "linux-64"}, "packages": {}}\n',
  'pkgs/cache/497deca9.solv': 'solv',
  'pkgs/cache/cache.lock': '',
  'pkgs/cache/497deca9.json.lock': '',
  'pkgs/pkgs.lock': '',
  'pkgs/urls.txt': '',
  'conda-meta/history': '==> 2026-11-25 <==\n',
  'conda-meta/conda-meta.lock': '',
  'bin/tool': '#!/bin/sh\n',
  'pkgs/hello-1.0-0/info/index.json': '{"name": "hello", "version": "1.0", "build": "0"}\n',
  'pkgs/hello-1.0-0/info/paths.json': '{"paths": [{"_path": "bin/hello", "path_type": "hardlink", "size_in_bytes": 10}], "paths_version": 1}\n',
  'pkgs/hello-1.0-0/bin/hello': '#!/bin/sh\n:\n',
  'envs/clean/bin/hello': '#!/bin/sh\n:\n',
  'envs/clean/conda-meta/hello-1.0-0.json': '{"name": "hello", "version": "1.0", "build": "0"}\n',
  'envs/clean/conda-meta/history': '==> 2026-11-25 <==\n',
  'envs/clean/conda-meta/conda-meta.lock': '',
};

/** A clean shared prefix: everything A:G, directories 2775, files 0664. */
export function sharedPrefix(prefix: string): string {
  for (const d of DIRS) {
    fs.mkdirSync(path.join(prefix, d), { recursive: true });
  }
  for (const [rel, text] of Object.entries(FILES)) fs.writeFileSync(path.join(prefix, rel), text);
  for (const d of DIRS) {
    fs.chownSync(path.join(prefix, d), OWNER.uid, GROUP);
    fs.chmodSync(path.join(prefix, d), 0o2775);
  }
  for (const rel of Object.keys(FILES)) {
    fs.chownSync(path.join(prefix, rel), OWNER.uid, GROUP);
    fs.chmodSync(path.join(prefix, rel), /(^|\/)bin\//.test(rel) ? 0o775 : 0o664);
  }
  return prefix;
}

export interface Entry {
  mode: string;
  uid: number;
  gid: number;
  sha256?: string;
}

/** Every path under `root` with its mode, owner and (for files) bytes hash. */
export function snapshot(root: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string): void => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    const e: Entry = { mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
    if (st.isFile()) e.sha256 = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    out.set(rel, e);
    if (st.isDirectory()) for (const n of fs.readdirSync(abs).sort()) walk(path.posix.join(rel, n));
  };
  walk('');
  return out;
}

/** The paths whose entries differ, with what changed. */
export function diff(a: Map<string, Entry>, b: Map<string, Entry>): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    const x = a.get(k);
    const y = b.get(k);
    if (!x || !y) {
      out[k] = [x ? 'removed' : 'added'];
      continue;
    }
    const fields = (['mode', 'uid', 'gid', 'sha256'] as const).filter((f) => x[f] !== y[f]).map((f) => `${f} ${x[f]}->${y[f]}`);
    if (fields.length) out[k] = fields;
  }
  return out;
}

const PY = '/usr/bin/python3';

/**
 * What mamba leaves when `who` creates environment `env` under `umask` (Python as that uid, so the kernel
 * applies the umask and the setgid inheritance): conda-meta/ with history, the lock file and one record per
 * package, bin/, lib/ and share/, and `extraDirs` more directories under lib/.
 */
export function memberEnv(env: string, who: { uid: number; gid: number }, umask: number, pkgs: string[] = [], extraDirs = 0): void {
  const code = `
import os, sys
os.umask(${umask})
env = sys.argv[1]
for d in ['conda-meta', 'bin', 'lib', 'share'] + ['lib/sub%02d' % i for i in range(${extraDirs})]:
    os.makedirs(os.path.join(env, d), exist_ok=True)
for f in ['conda-meta/history', 'conda-meta/conda-meta.lock'] + ['conda-meta/%s.json' % p for p in sys.argv[2:]]:
    open(os.path.join(env, f), 'w').close()
`;
  const r = runAs(who, PY, ['-c', code, env, ...pkgs]);
  if (r.status !== 0) throw new Error(`memberEnv: ${r.stderr}`);
}

/**
 * A package as `who` extracts it into pkgs/: modes from the archive (0755 bin/hello, 0644 lib/libhello.so of
 * `libBytes` bytes), whatever the umask; info/paths.json records the sizes.
 */
export function memberPackage(pkgs: string, name: string, who: { uid: number; gid: number }, libBytes: number): void {
  const code = `
import json, os, sys
pkg = os.path.join(sys.argv[1], sys.argv[2])
os.makedirs(pkg + '/info'); os.makedirs(pkg + '/bin'); os.makedirs(pkg + '/lib')
with open(pkg + '/bin/hello', 'w') as f: f.write('#!/bin/sh\\n:\\n')
with open(pkg + '/lib/libhello.so', 'wb') as f: f.write(b'\\0' * ${libBytes})
os.chmod(pkg + '/bin/hello', 0o755); os.chmod(pkg + '/lib/libhello.so', 0o644)
paths = [{'_path': p, 'path_type': 'hardlink', 'size_in_bytes': os.path.getsize(pkg + '/' + p)} for p in ['bin/hello', 'lib/libhello.so']]
json.dump({'paths': paths, 'paths_version': 1}, open(pkg + '/info/paths.json', 'w'))
json.dump({'name': 'hello'}, open(pkg + '/info/index.json', 'w'))
`;
  const r = runAs(who, PY, ['-c', code, pkgs, name]);
  if (r.status !== 0) throw new Error(`memberPackage: ${r.stderr}`);
}
