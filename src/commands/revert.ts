import type { Command } from 'commander';
import { revert } from '../apply/core.js';
import { renderRun, runJson } from '../apply/render.js';
import { printJson, warn } from '../output.js';
import { changedExit, type RunFlags } from './apply.js';
import { action, withCommonFlags } from './common.js';

export function register(program: Command): void {
  withCommonFlags(
    program
      .command('revert')
      .description('restore every file apply changed, byte for byte, and remove the shim and the state')
      .argument('[prefix]', 'conda prefix (default: $MAMBA_ROOT_PREFIX, $CONDA_ROOT, or the prefix of mamba on PATH)')
      .option('-n, --dry-run', 'print the exact plan and change nothing')
      .option('--detailed-exitcode', 'exit 10 when something changed, 0 when nothing needed to'),
  ).action(
    action((prefix: string | undefined, opts: RunFlags) => {
      const res = revert(prefix, { dryRun: opts.dryRun, onWait: (h) => warn(opts, `waiting for another run to finish (${h})`) });
      if (opts.json) printJson(runJson(res));
      else renderRun(res, { ...opts, verb: 'revert' });
      return changedExit(res.changed, opts);
    }),
  );
}
