/** The shim as the plan needs it: its bytes for an architecture, its version, and whether a file is one. */
import * as fs from 'node:fs';
import { shimInfo, shimPath, shimVersion, SHIM_FILENAME } from '../shim/index.js';

export { SHIM_FILENAME };
export { neededName, shimRel } from './names.js';

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

