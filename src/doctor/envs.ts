/** The environments of a prefix: `<prefix>/envs/*` and those under any shared `envs_dirs` configured. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { octal } from '../state/files.js';
import { configuredDirs, sharedDir } from './condarc.js';
import type { DoctorContext } from './types.js';

/** An environment holding this file in its top directory is private on purpose: not checked for group write. */
export const PRIVATE_MARKER = '.mambapatch-private';

export interface Env {
  /** Absolute path. */
  path: string;
  /** Relative to the prefix when inside it ("envs/a"), else absolute. */
  label: string;
  private: boolean;
}

/** A path as findings name it: relative to the prefix when inside it. */
export function showPath(ctx: DoctorContext, abs: string): string {
  const rel = path.relative(ctx.prefix, abs);
  return rel === '' ? ctx.prefix : rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel;
}

/** A path with its owner, group and mode, as findings name it: `envs/a (uid 4102, group condausers (4100), 2755)`. */
export const describe = (ctx: DoctorContext, abs: string, st: fs.Stats): string =>
  `${showPath(ctx, abs)} (uid ${st.uid}, group ${ctx.groupName(st.gid)}, ${octal(st.mode & 0o7777)})`;

/** A directory (following symlinks); false for anything absent, unreadable or not a directory. */
export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `<prefix>/envs` first, then each shared envs_dirs entry (per-user ones are each user's own business). */
export function envsDirs(ctx: DoctorContext): string[] {
  const configured = configuredDirs(ctx, 'envs_dirs', { CONDA_ENVS_DIRS: ',', CONDA_ENVS_PATH: ':' }).flatMap((s) => s.dirs);
  return [...new Set([path.join(ctx.prefix, 'envs'), ...configured.filter((d) => sharedDir(ctx, d)).map((d) => path.resolve(d))])];
}

/** The environments in the envs directories: subdirectories (or symlinks to them) holding conda-meta/. */
export function listEnvs(ctx: DoctorContext, dirs = envsDirs(ctx)): Env[] {
  const out: Env[] = [];
  for (const d of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(d).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const env = path.join(d, n);
      if (!isDir(path.join(env, 'conda-meta'))) continue;
      out.push({ path: env, label: showPath(ctx, env), private: fs.existsSync(path.join(env, PRIVATE_MARKER)) });
    }
  }
  return out;
}
