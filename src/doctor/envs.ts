/** The environments of a prefix: `<prefix>/envs/*` and those under any shared `envs_dirs` configured. */
import * as fs from 'node:fs';
import * as path from 'node:path';
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

export interface EnvsDir {
  path: string;
  label: string;
  /** Why it is checked: "the prefix" or where envs_dirs names it. */
  from: string;
}

/** A path as findings name it: relative to the prefix when inside it. */
export function showPath(ctx: DoctorContext, abs: string): string {
  const rel = path.relative(ctx.prefix, abs);
  return rel === '' ? ctx.prefix : rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel;
}

/** A directory (following symlinks); false for anything absent, unreadable or not a directory. */
export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `<prefix>/envs` first, then each shared envs_dirs entry (per-user ones are each user's own business). */
export function envsDirs(ctx: DoctorContext): EnvsDir[] {
  const out: EnvsDir[] = [{ path: path.join(ctx.prefix, 'envs'), label: 'envs', from: 'the prefix' }];
  for (const src of configuredDirs(ctx, 'envs_dirs', { CONDA_ENVS_DIRS: ',', CONDA_ENVS_PATH: ':' })) {
    for (const d of src.dirs.filter((d) => sharedDir(ctx, d))) {
      const abs = path.resolve(d);
      if (!out.some((e) => e.path === abs)) out.push({ path: abs, label: showPath(ctx, abs), from: src.from });
    }
  }
  return out;
}

/** The environments in the envs directories: subdirectories (or symlinks to them) holding conda-meta/. */
export function listEnvs(ctx: DoctorContext, dirs = envsDirs(ctx)): Env[] {
  const out: Env[] = [];
  for (const d of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(d.path).sort();
    } catch {
      continue;
    }
    for (const n of names) {
      const env = path.join(d.path, n);
      if (!isDir(path.join(env, 'conda-meta'))) continue;
      out.push({ path: env, label: showPath(ctx, env), private: fs.existsSync(path.join(env, PRIVATE_MARKER)) });
    }
  }
  return out;
}
