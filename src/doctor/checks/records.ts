/** conda-meta-present: the prefix keeps its package records in conda-meta/. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { isDir } from '../envs.js';
import type { Check } from '../types.js';

/** Where installed packages put files: a prefix with something here but no records is damaged. */
const INSTALLED = ['bin', 'lib'];

export const condaMetaPresent: Check = {
  name: 'conda-meta-present',
  description: 'the prefix has conda-meta/, its package records (without it the other checks still run, and this one says what is missing)',
  run(ctx) {
    if (isDir(path.join(ctx.prefix, 'conda-meta'))) return { status: 'ok', finding: 'conda-meta/ is present' };
    const installed = INSTALLED.filter((d) => {
      try {
        return fs.readdirSync(path.join(ctx.prefix, d)).length > 0;
      } catch {
        return false;
      }
    });
    const missing = `no conda-meta/ in ${ctx.prefix}: no package records, so neither mamba nor mambapatch can tell which packages (or mamba version) it holds`;
    if (installed.length) {
      return {
        status: 'problem',
        finding: `${missing}, yet ${installed.map((d) => `${d}/`).join(' and ')} ${installed.length > 1 ? 'hold' : 'holds'} installed files: the records are lost (restore conda-meta/ from a backup, or reinstall)`,
      };
    }
    return { status: 'warning', finding: `${missing}; expected for a root prefix that holds only pkgs/ and envs/ (micromamba)` };
  },
};
