/**
 * envs-writable: every environment (under `<prefix>/envs/` and any shared `envs_dirs`) lets the group write
 * its directories and conda-meta/ lock and history files. An environment created by one member under
 * umask 022 has 0755 directories and a 0644 conda-meta/conda-meta.lock: everyone else then gets
 * `Could not open lockfile` and `cannot create directories: Permission denied`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, envsDirs, listEnvs, PRIVATE_MARKER, showPath, type Env } from '../envs.js';
import { renderActions } from '../fixes.js';
import type { Check, DoctorContext, FixAction } from '../types.js';
import { walkDirs } from '../walk.js';

/** Group rwx and setgid on every directory; group rw on conda-meta's lock files and history. */
const DIR_BITS = 0o2070;
const FILE_BITS = 0o060;
/** The walk of one environment stops after this many directories lacking them. */
export const MAX_PER_ENV = 20;

const lacks = (ctx: DoctorContext, st: fs.Stats, bits: number) => st.gid !== ctx.gid || (bits & ~st.mode) !== 0;

/** chgrp and chmod of one path, as far as it lacks the group or the bits. */
function pathActions(ctx: DoctorContext, abs: string, st: fs.Stats, bits: number): FixAction[] {
  const out: FixAction[] = [];
  if (st.gid !== ctx.gid) out.push({ path: abs, op: 'chgrp', gid: ctx.gid });
  if (bits & ~st.mode) out.push({ path: abs, op: 'chmod', add: bits & ~st.mode, remove: 0 });
  return out;
}

interface EnvScan {
  env: Env;
  /** The first MAX_PER_ENV directories lacking group write or setgid, described. */
  dirs: string[];
  /** More than MAX_PER_ENV: the walk stopped. */
  more: boolean;
  files: string[];
  unreadable: string[];
  owners: Set<number>;
  actions: FixAction[];
}

function scanEnv(ctx: DoctorContext, env: Env): EnvScan {
  const scan: EnvScan = { env, dirs: [], more: false, files: [], unreadable: [], owners: new Set(), actions: [] };
  // An environment may be a symlink to a directory elsewhere: walk (and fix) where it points, as find does not follow it.
  const root = fs.lstatSync(env.path).isSymbolicLink() ? fs.realpathSync(env.path) : env.path;
  const walked = walkDirs(root, (abs, st) => {
    if (!lacks(ctx, st, DIR_BITS)) return true;
    if (scan.dirs.length === MAX_PER_ENV) {
      scan.more = true;
      return false;
    }
    scan.dirs.push(describe(ctx, abs, st));
    scan.owners.add(st.uid);
    return true;
  });
  scan.unreadable = walked.unreadable.map((u) => `${showPath(ctx, u.path)} (${u.code}: not checked below it)`);
  if (scan.dirs.length) scan.actions.push({ path: root, op: 'tree-dirs', gid: ctx.gid, add: DIR_BITS });
  const meta = path.join(root, 'conda-meta');
  let names: string[] = [];
  try {
    names = fs.readdirSync(meta).filter((n) => n.endsWith('.lock') || n === 'history').sort();
  } catch {
    // unreadable: reported by the walk
  }
  for (const n of names) {
    const abs = path.join(meta, n);
    const st = fs.lstatSync(abs, { throwIfNoEntry: false });
    if (!st?.isFile() || !lacks(ctx, st, FILE_BITS)) continue;
    scan.files.push(describe(ctx, abs, st));
    scan.owners.add(st.uid);
    scan.actions.push(...pathActions(ctx, abs, st, FILE_BITS));
  }
  return scan;
}

const bad = (s: EnvScan) => s.dirs.length + s.files.length + s.unreadable.length > 0;

/** One environment in the finding: its owners, how many directories, the first example, the files. */
function summarise(s: EnvScan): string {
  const parts: string[] = [];
  if (s.dirs.length) parts.push(`${s.dirs.length}${s.more ? ' and more' : ''} director(ies) without group write or setgid, e.g. ${s.dirs[0]}`);
  if (s.files.length) parts.push(s.files.join(', '));
  if (s.unreadable.length) parts.push(`unreadable: ${s.unreadable.join(', ')}`);
  return `${s.env.label} (owner uid ${[...s.owners].join(', ') || '?'}: ${parts.join('; ')})`;
}

export const envsWritable: Check = {
  name: 'envs-writable',
  description: `every environment (envs/ and shared envs_dirs) lets the group write its directories and conda-meta/ lock and history files; an environment holding ${PRIVATE_MARKER} is private on purpose`,
  run(ctx) {
    const dirs = envsDirs(ctx);
    const actions: FixAction[] = [];
    const dirProblems: string[] = [];
    const details: string[] = [];
    for (const d of dirs) {
      const st = fs.statSync(d, { throwIfNoEntry: false });
      if (!st?.isDirectory() || !lacks(ctx, st, DIR_BITS)) continue;
      const why = `${describe(ctx, d, st)}: members cannot create environments in it`;
      dirProblems.push(why);
      details.push(why);
      actions.push(...pathActions(ctx, d, st, DIR_BITS));
    }
    const envs = listEnvs(ctx, dirs);
    const shared = envs.filter((e) => !e.private);
    const scans = shared.map((e) => scanEnv(ctx, e)).filter(bad);
    for (const s of scans) {
      details.push(...s.dirs, ...(s.more ? [`${s.env.label}: and more (the walk stopped after ${MAX_PER_ENV} directories)`] : []), ...s.files, ...s.unreadable);
      actions.push(...s.actions);
    }
    const priv = envs.filter((e) => e.private).map((e) => e.label);
    const privNote = priv.length ? `; private on purpose (${PRIVATE_MARKER}): ${priv.join(', ')}` : '';
    details.push(...priv.map((p) => `${p}: private (${PRIVATE_MARKER})`));
    if (dirProblems.length + scans.length === 0) {
      const what = shared.length ? `${shared.length} environment(s) group-writable: ${shared.map((e) => e.label).join(', ')}` : 'no shared environments';
      return { status: 'ok', finding: `${what}${privNote}`, ...(details.length ? { details } : {}) };
    }
    const others = [...new Set(scans.flatMap((s) => [...s.owners]))].filter((u) => u !== ctx.owner);
    const who = others.length ? ` (files of uid ${others.join(', ')}: the fix needs root or their owner)` : '';
    const envPart = scans.length ? [`${scans.length} environment(s): ${scans.slice(0, 3).map(summarise).join('; ')}${scans.length > 3 ? `; and ${scans.length - 3} more` : ''}`] : [];
    return {
      status: 'problem',
      finding: `the group ${ctx.groupName(ctx.gid)} cannot write ${[...dirProblems, ...envPart].join('; ')}${who}${privNote}`,
      fix: renderActions(actions),
      actions,
      details,
    };
  },
};
