/** What the checks read from the machine: stat data (the kernel's view) and the group database. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { status, type StatusResult } from '../apply/core.js';
import { MambapatchError } from '../errors.js';
import type { DoctorContext } from './types.js';

function readGroups(): Map<number, string> {
  const names = new Map<number, string>();
  try {
    for (const line of fs.readFileSync('/etc/group', 'utf8').split('\n')) {
      const [name, , gid] = line.split(':');
      if (name && gid && /^\d+$/.test(gid) && !names.has(Number(gid))) names.set(Number(gid), name);
    }
  } catch {
    // no group database: numbers only
  }
  return names;
}

/** The group as chgrp takes it: its name when /etc/group has one, else the number. */
export function groupArg(gid: number, names = readGroups()): string {
  return names.get(gid) ?? String(gid);
}

/**
 * What makes a directory a prefix worth diagnosing. conda-meta/ is not required (a micromamba root prefix
 * may have only pkgs/ and envs/; the conda-meta-present check reports it missing), but a directory with
 * none of these is refused, so `--fix --yes` can never change the modes of an arbitrary directory.
 */
export const PREFIX_MARKS = ['conda-meta', 'pkgs', 'envs', 'condabin', 'bin/mamba', 'bin/micromamba', 'bin/conda'];

/** $HOME, else the passwd entry's home; '' when neither exists (HOME unset and a uid without a passwd entry). */
function homeOf(env: NodeJS.ProcessEnv): string {
  if (env.HOME) return env.HOME;
  try {
    return os.homedir();
  } catch {
    return '';
  }
}

export function makeContext(prefix: string, env: NodeJS.ProcessEnv = process.env): DoctorContext {
  let root: fs.Stats;
  try {
    root = fs.statSync(prefix);
  } catch (e) {
    throw new MambapatchError(`cannot read the prefix: ${(e as NodeJS.ErrnoException).code ?? e}`, { file: prefix });
  }
  if (!root.isDirectory()) throw new MambapatchError('not a directory', { file: prefix });
  if (!PREFIX_MARKS.some((m) => fs.existsSync(path.join(prefix, m)))) {
    throw new MambapatchError(`not a conda prefix (none of ${PREFIX_MARKS.join(', ')})`, { file: prefix });
  }
  const groups = readGroups();
  const cache = new Map<string, fs.Stats | null>();
  const statWith = (follow: boolean) => (rel: string) => {
    const key = `${follow ? 's' : 'l'}:${rel}`;
    if (!cache.has(key)) {
      const abs = path.join(prefix, rel);
      try {
        cache.set(key, follow ? fs.statSync(abs) : fs.lstatSync(abs));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        cache.set(key, null);
      }
    }
    return cache.get(key)!;
  };
  let st: { ok: StatusResult } | { err: unknown } | undefined;
  const statusOnce = (): StatusResult => {
    if (!st) {
      try {
        st = { ok: status(prefix) };
      } catch (err) {
        st = { err };
      }
    }
    if ('err' in st) throw st.err;
    return st.ok;
  };
  return {
    prefix,
    uid: process.getuid?.() ?? 0,
    owner: root.uid,
    gid: root.gid,
    groupName: (gid) => (groups.has(gid) ? `${groups.get(gid)} (${gid})` : String(gid)),
    stat: statWith(true),
    lstat: statWith(false),
    env,
    home: homeOf(env),
    status: statusOnce,
  };
}
