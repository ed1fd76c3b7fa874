/** Files shipped with mambapatch, found from this module whether it runs from src/ (tests) or dist/src/. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The first `<ancestor>/<rel>` that exists, walking up from this module's directory. */
export function packageFile(rel: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, rel);
    if (fs.existsSync(candidate)) return candidate;
    if (path.dirname(dir) === dir) throw new Error(`${rel} not found above ${here}`);
  }
}

/** The built CLI (dist/src/cli.js), resolved: what the hook script runs. */
export function cliPath(): string {
  return fs.realpathSync(packageFile('dist/src/cli.js'));
}
