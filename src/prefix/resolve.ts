/**
 * Which prefix a command works on: the argument, else MAMBA_ROOT_PREFIX, else CONDA_ROOT, else the prefix of
 * the `mamba` (or `micromamba`) found on PATH. The result says which one was used.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError, UsageError } from '../errors.js';

export type PrefixSource = 'argument' | 'MAMBA_ROOT_PREFIX' | 'CONDA_ROOT' | 'PATH';

export interface ResolvedPrefix {
  prefix: string;
  source: PrefixSource;
  /** Human description: "argument", "$MAMBA_ROOT_PREFIX", "mamba on PATH (/opt/conda/bin/mamba)". */
  how: string;
}

export function resolvePrefix(arg: string | undefined, env: NodeJS.ProcessEnv = process.env): ResolvedPrefix {
  let r: ResolvedPrefix | undefined;
  if (arg !== undefined && arg !== '') r = { prefix: path.resolve(arg), source: 'argument', how: 'argument' };
  else if (env.MAMBA_ROOT_PREFIX) r = { prefix: path.resolve(env.MAMBA_ROOT_PREFIX), source: 'MAMBA_ROOT_PREFIX', how: '$MAMBA_ROOT_PREFIX' };
  else if (env.CONDA_ROOT) r = { prefix: path.resolve(env.CONDA_ROOT), source: 'CONDA_ROOT', how: '$CONDA_ROOT' };
  else {
    const exe = findOnPath(['mamba', 'micromamba'], env.PATH ?? '');
    if (exe) r = { prefix: prefixOfExecutable(exe), source: 'PATH', how: `${path.basename(exe)} on PATH (${exe})` };
  }
  if (!r) {
    throw new UsageError('no prefix given, and none found in $MAMBA_ROOT_PREFIX, $CONDA_ROOT or a mamba on PATH');
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(r.prefix);
  } catch {
    throw new MambapatchError(`no such directory (prefix from ${r.how})`, { file: r.prefix });
  }
  if (!st.isDirectory()) throw new MambapatchError(`not a directory (prefix from ${r.how})`, { file: r.prefix });
  return r;
}

export function findOnPath(names: string[], pathVar: string): string | undefined {
  for (const dir of pathVar.split(':')) {
    if (!dir) continue;
    for (const name of names) {
      const p = path.join(dir, name);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        if (fs.statSync(p).isFile()) return p;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

/** `<prefix>/bin/mamba` or `<prefix>/condabin/mamba` → `<prefix>`, following a symlink from elsewhere. */
function prefixOfExecutable(exe: string): string {
  let p = exe;
  const parent = path.basename(path.dirname(p));
  if (parent !== 'bin' && parent !== 'condabin') {
    try {
      p = fs.realpathSync(p);
    } catch {
      // keep p
    }
  }
  return path.dirname(path.dirname(p));
}
