/** POSIX sh quoting, shared by everything that writes a script or shows a command. */

/** A POSIX sh single-quoted literal: `it's` → `'it'\''s'`. */
export function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A word for a command shown to a user: left bare when the shell would read it unchanged. */
export function shArg(s: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : shQuote(s);
}
