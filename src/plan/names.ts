/** Names the plan gives the shim in a prefix (the file name is the shared contract SHIM_FILENAME). */
import * as path from 'node:path';
import { SHIM_NAME } from '../prefix/detect.js';

/** Where the shim goes in a prefix. */
export function shimRel(): string {
  return `lib/${SHIM_NAME}`;
}

/**
 * The DT_NEEDED name for the shim in `fileRel`: found through $ORIGIN (the patched file's own directory),
 * so the loader finds it whatever the RUNPATH says and after the prefix is moved or conda-packed.
 */
export function neededName(fileRel: string): string {
  const rel = path.posix.relative(path.posix.dirname(fileRel), 'lib');
  return rel ? `$ORIGIN/${rel}/${SHIM_NAME}` : `$ORIGIN/${SHIM_NAME}`;
}
