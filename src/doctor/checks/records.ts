/** conda-meta-present: the prefix keeps its package records in conda-meta/. */
import * as path from 'node:path';
import { isDir } from '../envs.js';
import type { Check } from '../types.js';

export const condaMetaPresent: Check = {
  name: 'conda-meta-present',
  description: 'the prefix has conda-meta/, its package records (without it doctor runs the other checks and says so here)',
  run(ctx) {
    if (isDir(path.join(ctx.prefix, 'conda-meta'))) return { status: 'ok', finding: 'conda-meta/ is present' };
    return {
      status: 'warning',
      finding:
        `no conda-meta/ in ${ctx.prefix}: no package records, so nothing can say which packages (or mamba version) it holds; ` +
        'expected for a micromamba root prefix that holds only pkgs/ and envs/, otherwise the installation is damaged (reinstall it)',
    };
  },
};
