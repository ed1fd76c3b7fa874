import { cachedCompiler, type CompileRequest } from '../../src/demo/prefix.js';

/**
 * Compiles fixtures at test time, cached by the command line and the sources' contents, in a
 * world-readable cache under /tmp (so a second uid can load them). Returns the output path.
 */
const CACHE = '/tmp/mambapatch-fixture-cache';

export function cachedBuild(opts: CompileRequest & { compiler: string }): string {
  return cachedCompiler(CACHE, opts.compiler)(opts);
}
