/** A shared prefix as an administrator sets one up, built as root with the owner A and the group G. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GROUP, OWNER } from '../helpers/users.js';

export const DIRS = ['', 'bin', 'lib', 'pkgs', 'pkgs/cache', 'conda-meta'];
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
    fs.chmodSync(path.join(prefix, rel), rel.startsWith('bin/') ? 0o775 : 0o664);
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
