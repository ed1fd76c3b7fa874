#!/usr/bin/env -S -u NODE_EXTRA_CA_CERTS node
/**
 * The command-line layer: commander definitions only. Every command lives in src/commands/ and is a
 * few lines over the library core.
 *
 * The `#!` line starts Node without NODE_EXTRA_CA_CERTS: mambapatch opens no network connection, and
 * Node 20 reads and parses that certificate bundle at every start-up (Debian's: about 33 ms and 2 MiB,
 * more than `elf print-needed` needs for a 100 MiB library).
 */
import { Command, CommanderError } from 'commander';
import { setFlagsFromString } from 'node:v8';
import { EXIT } from './errors.js';
import { VERSION } from './package.js';
type Register = (program: Command) => void;

/**
 * No optimizing compiler: a run lasts well under a second, and its hot paths are native (copying, hashing,
 * system calls). TurboFan's first compilations alone cost 4-7 MiB of resident memory (its compiler threads'
 * zones), more than a streamed edit of a 100 MiB library uses, and bought no time (`npm run bench elf`).
 * Set before any command module loads; the library used in-process is unaffected.
 */
setFlagsFromString('--no-opt');

/**
 * Command modules, loaded on demand: a run loads only the command it names (start-up time matters for
 * `elf add-needed` in scripts and for the post-install hook); help and unknown words load them all.
 */
const COMMANDS: Record<string, () => Promise<{ register: Register }>> = {
  apply: () => import('./commands/apply.js'),
  revert: () => import('./commands/revert.js'),
  status: () => import('./commands/status.js'),
  doctor: () => import('./commands/doctor.js'),
  hook: () => import('./commands/hook.js'),
  shim: () => import('./commands/shim.js'),
  elf: () => import('./commands/elf.js'),
  demo: () => import('./commands/demo.js'),
};

async function loadCommands(argv: string[]): Promise<Register[]> {
  const first = argv.slice(2).find((a) => !a.startsWith('-'));
  const names = first !== undefined && first in COMMANDS ? [first] : Object.keys(COMMANDS);
  return Promise.all(names.map(async (n) => (await COMMANDS[n]!()).register));
}

export function buildProgram(registers: Register[]): Command {
  const program = new Command();
  program
    .name('mambapatch')
    .description('Make mamba work in shared, multi-user conda installations.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  for (const register of registers) register(program);
  // Sub-commands inherit exitOverride only when set before they are created; set it on all of them.
  const walk = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}

/** A reader that stops early (`mambapatch status | head`) is not an error: stop quietly. */
function exitQuietlyOnEpipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : EXIT.OK);
    throw err;
  });
}

export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnEpipe(process.stdout);
  exitQuietlyOnEpipe(process.stderr);
  const program = buildProgram(await loadCommands(argv));
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end with exit code 0; every other parse error is a usage error.
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
      return;
    }
    throw err;
  }
}

await main(process.argv);
