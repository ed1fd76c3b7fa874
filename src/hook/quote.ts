/** Paths the hook writes into sh scripts and systemd units. */
import { MambapatchError } from '../errors.js';

/** A path safe to embed in sh and in systemd units: absolute, no newline or NUL. */
export function checkEmbeddablePath(p: string, what: string): void {
  if (!p.startsWith('/')) throw new MambapatchError(`${what} is not an absolute path`, { file: p });
  if (/[\n\r\0]/.test(p)) throw new MambapatchError(`${what} contains a newline; it cannot be written into a script`, { file: p });
}
