import type { Command } from 'commander';

/** Placeholder: the 'apply' command is being built (see the issue that names it). */
export function register(_program: Command): void {}
