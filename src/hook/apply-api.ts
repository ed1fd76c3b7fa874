/**
 * What the hook and doctor use from apply/status (issue 4), in one place: the state-directory layout named
 * in the shared contract, the prefix resolution, and the status of the patch.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { status, type StatusResult } from '../apply/core.js';
import { oneLine } from '../errors.js';
import { statePaths } from '../state/paths.js';

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
  /** One line for humans: status's problems, or its notes. */
  summary: string;
}

/** The same verdict as `mambapatch status --check` (issue 4's status core): problems → missing. */
export function checkPatch(prefix: string, get: () => StatusResult = () => status(prefix)): PatchCheck {
  let st: StatusResult;
  try {
    st = get();
  } catch (e) {
    return { state: 'unknown', summary: `status could not tell: ${oneLine(e)}` };
  }
  if (st.problems.length > 0) return { state: 'missing', summary: st.problems.join('; ') };
  return { state: 'current', summary: st.notes.join('; ') };
}
