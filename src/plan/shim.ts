/** The shim as the plan needs it: its bytes for an architecture, its version, and whether a file is one. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shimInfo, shimPath, shimVersion, SHIM_FILENAME } from '../shim/index.js';

export { SHIM_FILENAME };

export function shimSource(arch: string): { source: string; data: Buffer; version: string } {
  const source = shimPath(arch);
  return { source, data: fs.readFileSync(source), version: shimVersion() };
}

export function isMambapatchShim(file: string): boolean {
  try {
    shimInfo(file);
    return true;
  } catch {
    return false;
  }
}

/** Where the shim goes in a prefix. */
export function shimRel(): string {
  return `lib/${SHIM_FILENAME}`;
}

/**
 * The DT_NEEDED name for the shim in `fileRel`: found through $ORIGIN (the patched file's own directory),
 * so the loader finds it whatever the RUNPATH says and after the prefix is moved or conda-packed.
 */
export function neededName(fileRel: string): string {
  const rel = path.posix.relative(path.posix.dirname(fileRel), 'lib');
  return rel ? `$ORIGIN/${rel}/${SHIM_FILENAME}` : `$ORIGIN/${SHIM_FILENAME}`;
}
