import { mkdtempSync, chmodSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * A fresh directory under /tmp that every uid can traverse (0755), never under root's home:
 * tests that run a second user put their fixtures here.
 */
export function worldTmp(tag: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join('/tmp', `mambapatch-${tag}-`));
  chmodSync(dir, 0o755);
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
