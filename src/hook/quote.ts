/** Quoting for the files the hook writes: POSIX sh literals and systemd unit values. */
import { MambapatchError } from '../errors.js';

/** A POSIX sh single-quoted literal: `it's` → `'it'\''s'`. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A word for a command shown to a user: left bare when the shell would read it unchanged. */
export function shArg(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : shQuote(s);
}

/** A path safe to embed in sh and in systemd units: absolute, no newline or NUL. */
export function checkEmbeddablePath(p: string, what: string): void {
  if (!p.startsWith('/')) throw new MambapatchError(`${what} is not an absolute path`, { file: p });
  if (/[\n\r\0]/.test(p)) throw new MambapatchError(`${what} contains a newline; it cannot be written into a script`, { file: p });
}
