import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, chmodSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Compiles fixtures at test time, cached by the command line and the sources' contents, in a
 * world-readable cache under /tmp (so a second uid can load them). Returns the output path.
 */
const CACHE = '/tmp/mambapatch-fixture-cache';

export function cachedBuild(opts: {
  name: string;
  compiler: string;
  args: string[];
  sources: string[];
  /** Arguments after the sources (libraries to link). */
  after?: string[];
}): string {
  const h = createHash('sha256');
  h.update([opts.compiler, ...opts.args, '--', ...(opts.after ?? [])].join('\0'));
  for (const s of opts.sources) h.update(readFileSync(s));
  const dir = join(CACHE, h.digest('hex').slice(0, 16));
  const out = join(dir, opts.name);
  if (existsSync(out)) return out;
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  chmodSync(CACHE, 0o755);
  chmodSync(dir, 0o755);
  const tmp = `${out}.tmp${process.pid}`;
  execFileSync(opts.compiler, [...opts.args, ...opts.sources, ...(opts.after ?? []), '-o', tmp], { stdio: ['ignore', 'ignore', 'pipe'] });
  renameSync(tmp, out);
  return out;
}
