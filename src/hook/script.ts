/**
 * The post-install hook: a POSIX sh script that re-applies the fix to one prefix, with the absolute paths
 * of node, the mambapatch CLI and the prefix written as single-quoted literals (it needs no PATH).
 */
import * as fs from 'node:fs';
import { VERSION } from '../package.js';
import { cliPath, packageFile } from './package-files.js';
import { shQuote } from '../shell.js';
import { checkEmbeddablePath } from './quote.js';

/** The first line after the shebang of every hook we write: how `hook status` recognises ours. */
export const HOOK_MARKER = '# mambapatch-hook 1';

export interface HookScriptOptions {
  /** The node executable the hook runs (default: this one). */
  node?: string;
  /** The mambapatch CLI the hook runs (default: this one, resolved). */
  cli?: string;
}

export function hookScript(prefix: string, opts: HookScriptOptions = {}): string {
  const node = opts.node ?? process.execPath;
  const cli = opts.cli ?? cliPath();
  checkEmbeddablePath(prefix, 'prefix');
  checkEmbeddablePath(node, 'node executable');
  checkEmbeddablePath(cli, 'mambapatch CLI');
  const values: Record<string, string> = {
    '@VERSION@': VERSION,
    '@NODE@': shQuote(node),
    '@CLI@': shQuote(cli),
    '@PREFIX@': shQuote(prefix),
  };
  return fs.readFileSync(packageFile('templates/hooks/reapply.sh'), 'utf8').replace(/@[A-Z]+@/g, (k) => values[k] ?? k);
}
