import type { Command } from 'commander';
import { action, withCommonFlags } from './common.js';
import { printJson, type OutputOptions } from '../output.js';
import { hostArch, shimInfo, shimPath, shimVersion } from '../shim/index.js';

/** `mambapatch shim path|info`: which shim apply would install, and what a file is. */
export function register(program: Command): void {
  const shim = program.command('shim').description('the shim library that mambapatch installs into a prefix');

  withCommonFlags(
    shim
      .command('path')
      .description('print the absolute path of the shim that apply would install (built on demand if needed)')
      .option('--arch <arch>', 'x86_64, aarch64 or ppc64le (default: this machine)'),
  ).action(
    action((opts: OutputOptions & { arch?: string }) => {
      const arch = opts.arch ?? hostArch();
      const file = shimPath(arch);
      if (opts.json) printJson({ ok: true, arch, version: shimVersion(), path: file });
      else process.stdout.write(file + '\n');
    }),
  );

  withCommonFlags(
    shim.command('info').description('print the architecture and shim version of FILE').argument('<file>'),
  ).action(
    action((file: string, opts: OutputOptions) => {
      const info = shimInfo(file);
      if (opts.json) printJson({ ok: true, file, ...info });
      else process.stdout.write(`${file}: mambapatch shim ${info.version} for ${info.arch}\n`);
    }),
  );
}
