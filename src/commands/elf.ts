import type { Command } from 'commander';

/** Placeholder: the 'elf' command is being built (see the issue that names it). */
export function register(_program: Command): void {}
