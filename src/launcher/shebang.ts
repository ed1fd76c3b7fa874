/**
 * Reading a console script's interpreter, in both forms conda writes:
 *   `#!/opt/conda/bin/python [arg]`                       (short prefixes)
 *   `#!/bin/sh` + `'''exec' "/long prefix/bin/python" "$0" "$@" #'''`   (over 127 characters or with spaces)
 */
export interface Interpreter {
  /** Absolute path of the Python (or other) interpreter. */
  path: string;
  /** The single optional argument of a `#!` line. */
  arg?: string;
  form: 'shebang' | 'sh-exec';
}

export function parseInterpreter(text: string): Interpreter | undefined {
  if (!text.startsWith('#!')) return undefined;
  const lines = text.split('\n', 3);
  const first = (lines[0] ?? '').slice(2).trim();
  if (first === '/bin/sh' && lines[1]?.startsWith("'''exec' ")) {
    const m = /^'''exec' "((?:[^"\\]|\\.)*)"/.exec(lines[1]);
    if (m) return { path: m[1]!.replace(/\\(.)/g, '$1'), form: 'sh-exec' };
  }
  const [interp, ...rest] = first.split(/[ \t]+/);
  if (!interp) return undefined;
  return { path: interp, arg: rest.length ? rest.join(' ') : undefined, form: 'shebang' };
}

const PYTHON = /(^|\/)python[0-9.]*$/;

/** `/opt/conda/bin/python3.11`, or `/usr/bin/env python`. */
export function isPythonInterpreter(i: Interpreter): boolean {
  return PYTHON.test(i.path) || (/(^|\/)env$/.test(i.path) && PYTHON.test(i.arg ?? ''));
}
