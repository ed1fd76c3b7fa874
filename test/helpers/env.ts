/**
 * What a test needs from the machine. Outside CI a missing tool or missing root skips the test with the
 * reason; in CI (CI=true) it fails, because .ci/run installs everything the tests use.
 */
import { execFileSync } from 'node:child_process';

export const inCI = process.env.CI === 'true' || process.env.CI === '1';
export const isRoot = process.getuid?.() === 0;

const cache = new Map<string, boolean>();
export function hasTool(tool: string): boolean {
  let ok = cache.get(tool);
  if (ok === undefined) {
    try {
      execFileSync('sh', ['-c', `command -v "$1"`, 'sh', tool], { stdio: 'ignore' });
      ok = true;
    } catch {
      ok = false;
    }
    cache.set(tool, ok);
  }
  return ok;
}

/**
 * Returns a reason to skip, or undefined when everything is there. In CI a missing requirement throws
 * instead, so a test that should run can never be skipped silently.
 * Usage: `describe.skipIf(missing({ root: true, tools: ['gcc'] }))(...)`.
 */
export function missing(req: { root?: boolean; tools?: string[] }): string | undefined {
  const reasons: string[] = [];
  if (req.root && !isRoot) reasons.push('needs root (to switch users with setpriv)');
  for (const t of req.tools ?? []) if (!hasTool(t)) reasons.push(`needs ${t}`);
  if (reasons.length === 0) return undefined;
  const why = reasons.join(', ');
  if (inCI) throw new Error(`required in CI but missing: ${why}`);
  console.warn(`skipping: ${why}`);
  return why;
}
