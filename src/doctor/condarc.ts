/** The condarc files doctor reads, and the directory lists they configure (pkgs_dirs, envs_dirs). */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { DoctorContext } from './types.js';

/** A list key from a .condarc: a block list or a flow list. Enough YAML for `pkgs_dirs` and `envs_dirs`. */
export function parseCondarcList(text: string, key: string): string[] | undefined {
  const lines = text.split('\n');
  const head = new RegExp(`^${key}\\s*:`);
  const i = lines.findIndex((l) => head.test(l));
  if (i < 0) return undefined;
  const unquote = (s: string) => s.trim().replace(/\s+#.*$/, '').replace(/^(['"])(.*)\1$/, '$2');
  const rest = lines[i]!.replace(head, '').trim();
  if (rest.startsWith('[')) return rest.replace(/^\[|\].*$/g, '').split(',').map(unquote).filter(Boolean);
  const out: string[] = [];
  for (const l of lines.slice(i + 1)) {
    if (/^\s*(#.*)?$/.test(l)) continue;
    const m = /^\s*-\s*(.*)$/.exec(l);
    if (!m) break;
    out.push(unquote(m[1]!));
  }
  return out;
}

/** The system, prefix and user (when the home directory is known) condarc/mambarc files, then $CONDARC and $MAMBARC. */
export function condarcFiles(ctx: DoctorContext): string[] {
  const files = [
    '/etc/conda/.condarc',
    '/etc/conda/condarc',
    '/etc/conda/.mambarc',
    path.join(ctx.prefix, '.condarc'),
    path.join(ctx.prefix, 'condarc'),
    path.join(ctx.prefix, '.mambarc'),
    ...(ctx.home ? [path.join(ctx.home, '.condarc'), path.join(ctx.home, '.conda', '.condarc'), path.join(ctx.home, '.mambarc')] : []),
  ];
  for (const v of [ctx.env.CONDARC, ctx.env.MAMBARC]) if (v) files.push(v);
  return [...new Set(files)];
}

/** A directory that differs per user (`~`, `$HOME`), so it is nobody else's concern. */
export const perUser = (dir: string): boolean => /^~|\$\{?HOME\b|%USERPROFILE%/.test(dir);

/** A configured directory shared between users: absolute, not per-user and not under the home directory. */
export const sharedDir = (ctx: DoctorContext, dir: string): boolean =>
  !perUser(dir) && path.isAbsolute(dir) && !(ctx.home && dir.startsWith(ctx.home + '/'));

export interface ConfiguredDirs {
  /** `$CONDA_PKGS_DIRS` or a condarc file. */
  from: string;
  dirs: string[];
}

/**
 * Where `key` is set: the environment variables first (each with its list separator: conda splits
 * `CONDA_PKGS_DIRS` on commas, `CONDA_ENVS_PATH` on colons), then every readable condarc file.
 */
export function configuredDirs(ctx: DoctorContext, key: string, envVars: Record<string, string>): ConfiguredDirs[] {
  const sources: ConfiguredDirs[] = [];
  for (const [v, sep] of Object.entries(envVars)) {
    const value = ctx.env[v];
    if (value) sources.push({ from: `$${v}`, dirs: value.split(sep).map((s) => s.trim()).filter(Boolean) });
  }
  for (const f of condarcFiles(ctx)) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    const dirs = parseCondarcList(text, key);
    if (dirs) sources.push({ from: f, dirs });
  }
  return sources;
}
