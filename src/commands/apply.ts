import type { Command } from 'commander';
import { apply } from '../apply/core.js';
import { renderRun, runJson } from '../apply/render.js';
import { EXIT, UsageError } from '../errors.js';
import { printJson, warn, type OutputOptions } from '../output.js';
import type { Method } from '../state/manifest.js';
import { action, withCommonFlags } from './common.js';

export interface RunFlags extends OutputOptions {
  dryRun?: boolean;
  detailedExitcode?: boolean;
  method?: string;
  exe?: string[];
}

const METHODS = ['auto', 'needed', 'launcher', 'supervise'] as const;

export function parseMethod(m: string | undefined): 'auto' | Method {
  if (m === undefined) return 'auto';
  if ((METHODS as readonly string[]).includes(m)) return m as 'auto' | Method;
  throw new UsageError(`--method must be auto, needed, launcher or supervise (got ${JSON.stringify(m)})`);
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v];

/** 0, or 10 with --detailed-exitcode when something changed. */
export function changedExit(changed: boolean, opts: RunFlags): number {
  return changed && opts.detailedExitcode ? EXIT.CHANGED : EXIT.OK;
}

export function register(program: Command): void {
  withCommonFlags(
    program
      .command('apply')
      .description('patch the mamba installs of a prefix so every member of its group can use it')
      .argument('[prefix]', 'conda prefix (default: $MAMBA_ROOT_PREFIX, $CONDA_ROOT, or the prefix of mamba on PATH)')
      .option('--method <method>', 'auto, needed (add the shim to the ELF file), launcher (wrap bin/mamba) or supervise (entry hook for static executables)', 'auto')
      .option('--exe <path>', 'also patch this executable outside the prefix (e.g. /usr/local/bin/micromamba; repeatable)', collect)
      .option('-n, --dry-run', 'print the exact plan and change nothing')
      .option('--detailed-exitcode', 'exit 10 when something changed, 0 when nothing needed to'),
  ).action(
    action((prefix: string | undefined, opts: RunFlags) => {
      const res = apply(prefix, {
        method: parseMethod(opts.method),
        exes: opts.exe,
        dryRun: opts.dryRun,
        onWait: (holder) => warn(opts, `waiting for another run to finish (${holder})`),
      });
      if (opts.json) printJson(runJson(res));
      else renderRun(res, { ...opts, verb: 'apply' });
      return changedExit(res.changed, opts);
    }),
  );
}
