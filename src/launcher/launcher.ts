/**
 * The `launcher` method: mamba's launcher (the 1.x `bin/mamba` console script) is replaced by a small
 * `/bin/sh` script that puts the shim first in LD_PRELOAD and runs the original, which is kept beside it
 * as `.NAME.mambapatch-orig` (nixpkgs' `.NAME-wrapped` idea). Every path is a single-quoted literal.
 */
import * as path from 'node:path';
import { MambapatchError } from '../errors.js';
import { shQuote } from '../shell.js';
import { isPythonInterpreter, type Interpreter } from './shebang.js';

/** The second line of every launcher: how a launcher is recognised (and never wrapped twice). */
export const LAUNCHER_MARKER = '# mambapatch-launcher v1';

/** `bin/mamba` → `bin/.mamba.mambapatch-orig` (relative or absolute, as given). */
export function originalName(file: string): string {
  return path.join(path.dirname(file), `.${path.basename(file)}.mambapatch-orig`);
}

/** LD_PRELOAD splits on spaces and colons and has no escaping: such a path cannot be preloaded. */
export function checkPreloadable(shim: string): void {
  if (/[ :]/.test(shim)) {
    throw new MambapatchError(
      'the shim path contains a space or a colon, which LD_PRELOAD cannot carry; use --method needed',
      { file: shim },
    );
  }
}

export interface LauncherSpec {
  /** Absolute path of the shim to preload. */
  shim: string;
  /** Absolute path of the kept original. */
  original: string;
  /** The original is an ELF executable (run with `exec -a "$0"`, which needs bash). */
  elf: boolean;
  /** The original script's interpreter, when it is a script. */
  interpreter?: Interpreter;
}

// Runs the original Python script as __main__ (in this -c program's own __main__ namespace, with __file__
// set) with sys.argv[0] = the launcher's $0 and sys.path[0] = the script's directory, as `python script`
// would. exec(compile(...)) rather than runpy: runpy's imports cost a few milliseconds per start.
const PY_RUNNER =
  'import sys;f=sys.argv[1];del sys.argv[:2];sys.path[0]=f.rpartition("/")[0];__file__=f;exec(compile(open(f,"rb").read(),f,"exec"))';

export function renderLauncher(spec: LauncherSpec): string {
  checkPreloadable(spec.shim);
  for (const p of [spec.shim, spec.original, spec.interpreter?.path ?? '']) {
    if (p.includes('\n') || p.includes('\0')) throw new MambapatchError('path contains a newline', { file: p });
  }
  let run: string;
  if (spec.elf) {
    run = `exec -a "$0" ${shQuote(spec.original)} "$@"`;
  } else if (spec.interpreter && isPythonInterpreter(spec.interpreter)) {
    const arg = spec.interpreter.arg ? ` ${shQuote(spec.interpreter.arg)}` : '';
    run = `exec ${shQuote(spec.interpreter.path)}${arg} -c ${shQuote(PY_RUNNER)} ${shQuote(spec.original)} "$0" "$@"`;
  } else {
    run = `exec ${shQuote(spec.original)} "$@"`;
  }
  return [
    spec.elf ? '#!/bin/bash' : '#!/bin/sh',
    LAUNCHER_MARKER,
    '# Runs the original mamba (kept beside this file) with the mambapatch shim preloaded, so that other',
    '# members of the group can use this shared prefix. Undo with `mambapatch revert`; do not edit.',
    `mambapatch_shim=${shQuote(spec.shim)}`,
    'set -f',
    'mambapatch_new=$mambapatch_shim',
    "IFS=': '",
    'for mambapatch_e in ${LD_PRELOAD-}; do',
    '  if [ -n "$mambapatch_e" ] && [ "$mambapatch_e" != "$mambapatch_shim" ]; then mambapatch_new="$mambapatch_new:$mambapatch_e"; fi',
    'done',
    'LD_PRELOAD=$mambapatch_new',
    'export LD_PRELOAD',
    'unset IFS mambapatch_e mambapatch_new mambapatch_shim',
    run,
    '',
  ].join('\n');
}
