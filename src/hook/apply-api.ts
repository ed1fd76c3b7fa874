/**
 * What the hook and doctor use from apply/status (issue 4), in one place: the state-directory layout named
 * in the shared contract, the prefix resolution, and the status of the patch.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT } from '../errors.js';
import { statePaths } from '../state/paths.js';
import { cliPath } from './package-files.js';

export { resolvePrefix, type ResolvedPrefix } from '../prefix/resolve.js';

export { statePaths, type StatePaths } from '../state/paths.js';

/** Where the shim is installed in every prefix (shared contract). */
export const shimFile = (prefix: string): string => path.join(prefix, 'lib', 'libmambapatch.so');


/** The absolute paths in `<prefix>/.mambapatch/watch` (written by every apply), or undefined without one. */
export function readWatch(prefix: string): string[] | undefined {
  let text: string;
  try {
    text = fs.readFileSync(statePaths(prefix).watch, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return text.split('\n').filter((l) => l.startsWith('/'));
}

export interface PatchCheck {
  /** 'current': everything affected is patched; 'missing': something affected is not (or is stale). */
  state: 'current' | 'missing' | 'unknown';
  /** One line for humans. */
  summary: string;
  /** status's own JSON document, when it produced one. */
  detail?: unknown;
}

/** `mambapatch status --check` on the prefix: exit 0 current, 3 missing or stale, anything else unknown. */
export function checkPatch(prefix: string): PatchCheck {
  const r = spawnSync(process.execPath, [cliPath(), 'status', prefix, '--check', '--json'], {
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1', MAMBAPATCH_NO_HOOK: '1' },
    timeout: 120_000,
  });
  let detail: unknown;
  try {
    detail = JSON.parse(r.stdout);
  } catch {
    detail = undefined;
  }
  const why = (r.stderr ?? '').trim().split('\n')[0] ?? '';
  if (r.status === EXIT.OK) return { state: 'current', summary: 'the fix is present and current', detail };
  if (r.status === EXIT.CHECK_FAILED) return { state: 'missing', summary: 'the fix is missing or stale', detail };
  return { state: 'unknown', summary: `status could not tell${why ? `: ${why.replace(/^mambapatch: /, '')}` : ''}`, detail };
}
