import type { Command } from 'commander';
import { runDemo, type DemoOptions } from '../demo/demo.js';
import { action, withCommonFlags } from './common.js';

export function register(program: Command): void {
  withCommonFlags(
    program
      .command('demo')
      .description('show the two shared-prefix failures and the fix on throwaway stand-in prefixes (run as root to switch users)')
      .option('--keep', 'keep the demo prefixes instead of removing them'),
    { json: false },
  ).action(action((opts: DemoOptions) => runDemo(opts)));
}
