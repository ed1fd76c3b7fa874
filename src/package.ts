/** Where mambapatch itself is installed, and its version: found the same way from src/ (tests) and dist/src/. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): { root: string; version: string } {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pj = path.join(dir, 'package.json');
    if (fs.existsSync(pj)) {
      const meta = JSON.parse(fs.readFileSync(pj, 'utf8')) as { name?: string; version?: string };
      if (meta.name === 'mambapatch' && typeof meta.version === 'string') return { root: dir, version: meta.version };
    }
    const up = path.dirname(dir);
    if (up === dir) throw new Error('mambapatch: cannot find the package root');
    dir = up;
  }
}

const found = findRoot();

/** The package root: the nearest directory above this module with mambapatch's package.json. */
export const PACKAGE_ROOT: string = found.root;
/** The package version. */
export const VERSION: string = found.version;
/** templates/ of the package (shim source, hook script, demo stand-ins). */
export const TEMPLATES_DIR: string = path.join(PACKAGE_ROOT, 'templates');
