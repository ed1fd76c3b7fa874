import type { Command } from 'commander';
import { status } from '../apply/core.js';
import { renderStatus } from '../apply/render.js';
import { EXIT } from '../errors.js';
import { printJson, type OutputOptions } from '../output.js';
import { action, withCommonFlags } from './common.js';

export function register(program: Command): void {
  withCommonFlags(
    program
      .command('status')
      .description('show, per mamba install, whether it is patched, unpatched, stale or unsupported')
      .argument('[prefix]', 'conda prefix (default: $MAMBA_ROOT_PREFIX, $CONDA_ROOT, or the prefix of mamba on PATH)')
      .option('--check', 'exit 3 when an affected mamba is not patched (or the patch is stale or broken)'),
  ).action(
    action((prefix: string | undefined, opts: OutputOptions & { check?: boolean }) => {
      const st = status(prefix);
      const failed = opts.check === true && st.problems.length > 0;
      if (opts.json) printJson({ ok: !failed, ...st });
      else renderStatus(st, opts);
      return failed ? EXIT.CHECK_FAILED : EXIT.OK;
    }),
  );
}
