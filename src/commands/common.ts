import type { Command } from 'commander';
import { EXIT, MambapatchError, oneLine } from '../errors.js';
import { printJson, type OutputOptions } from '../output.js';

/** Adds the flags every command shares. */
export function withCommonFlags(cmd: Command, { json = true } = {}): Command {
  if (json) cmd.option('--json', 'print the result as one JSON document on stdout, and nothing else');
  return cmd
    .option('-q, --quiet', 'print nothing but errors')
    .option('--debug', 'print stack traces for unexpected errors');
}

/**
 * Wraps a command's action: the action returns an exit code (or nothing for 0); any thrown error
 * becomes one line on stderr (a stack only with --debug) and the error's documented exit code.
 * Uses process.exitCode rather than process.exit() so piped output is never truncated.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<number | void> | number | void,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    const cmd = args[args.length - 1] as Command;
    const opts = (typeof cmd?.opts === 'function' ? cmd.opts() : {}) as OutputOptions;
    try {
      const code = await fn(...args);
      process.exitCode = code ?? EXIT.OK;
    } catch (err) {
      reportError(err, opts);
    }
  };
}

export function reportError(err: unknown, opts: OutputOptions): void {
  const known = err instanceof MambapatchError;
  const code = known ? err.exitCode : EXIT.ERROR;
  const line = oneLine(err);
  if (opts.json) printJson({ ok: false, error: line, exitCode: code });
  process.stderr.write(`mambapatch: ${line}\n`);
  if (opts.debug && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
  process.exitCode = code;
}
