// Builds the shipped shims, shims/<arch>/libmambapatch.so, and the supervisor blobs,
// shims/<arch>/mambapatch-hook.bin, for every architecture whose compiler is
// installed (the host's cc, Debian's cross compilers). A missing compiler is a warning, never a failure:
// `npm ci` on a machine with only gcc (or none) must still succeed. Runs after tsc (uses dist/).
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SHIM_ARCHES, buildShim, compilerHint, findCompiler } from '../dist/src/shim/build.js';
import { HOOK_FILENAME, buildHook } from '../dist/src/supervisor/build.js';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const arch of SHIM_ARCHES) {
  const compiler = findCompiler(arch);
  if (!compiler) {
    console.warn(`build-shims: skipping ${arch}: no compiler (${compilerHint(arch)})`);
    continue;
  }
  const builds = [
    ['libmambapatch.so', buildShim],
    [HOOK_FILENAME, buildHook],
  ];
  for (const [name, build] of builds) {
    const out = join(root, 'shims', arch, name);
    try {
      if (build(arch, out, compiler)) console.log(`build-shims: built ${out}`);
    } catch (err) {
      console.warn(`build-shims: skipping ${arch} ${name}: ${err.message}`);
    }
  }
}
