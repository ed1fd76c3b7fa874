#!/usr/bin/env node
/**
 * The command-line layer: commander definitions only. Every command lives in src/commands/ and is a
 * few lines over the library core.
 */
import { Command, CommanderError } from 'commander';
import { EXIT } from './errors.js';
import { VERSION } from './version.js';
import { register as registerElf } from './commands/elf.js';
import { register as registerShim } from './commands/shim.js';
import { register as registerApply } from './commands/apply.js';
import { register as registerRevert } from './commands/revert.js';
import { register as registerStatus } from './commands/status.js';
import { register as registerDemo } from './commands/demo.js';
import { register as registerHook } from './commands/hook.js';
import { register as registerDoctor } from './commands/doctor.js';

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('mambapatch')
    .description('Make mamba work in shared, multi-user conda installations.')
    .version(VERSION, '-V, --version')
    .showHelpAfterError()
    .exitOverride();
  for (const register of [
    registerApply,
    registerRevert,
    registerStatus,
    registerDoctor,
    registerHook,
    registerShim,
    registerElf,
    registerDemo,
  ]) {
    register(program);
  }
  // Sub-commands inherit exitOverride only when set before they are created; set it on all of them.
  const walk = (c: Command): void => {
    c.exitOverride();
    c.commands.forEach(walk);
  };
  walk(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
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
