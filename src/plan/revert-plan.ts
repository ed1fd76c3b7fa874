/**
 * Computes what `revert` does: from the manifest, put back every file that still is what apply made
 * (checked by hash), remove what apply created, and leave (and report) anything changed since.
 */
import { readElfFile } from '../elf/index.js';
import { LAUNCHER_MARKER } from '../launcher/launcher.js';
import { isElf, isShimName, readHead } from '../prefix/detect.js';
import { fileMeta } from '../state/files.js';
import { inPrefix } from '../state/paths.js';
import type { Manifest, ManifestEntry } from '../state/manifest.js';
import type { Plan } from './types.js';

const ORDER: Record<ManifestEntry['role'], number> = { target: 0, 'kept-original': 1, shim: 2 };

export function buildRevertPlan(prefix: string, prefixFrom: string, manifest: Manifest | null): Plan {
  const plan: Plan = { op: 'revert', prefix, prefixFrom, method: 'auto', targets: [], steps: [], notes: [], warnings: [] };
  if (!manifest) return plan;
  const entries = [...manifest.entries].sort((a, b) => ORDER[a.role] - ORDER[b.role] || a.path.localeCompare(b.path));
  for (const e of entries) {
    const cur = fileMeta(inPrefix(prefix, e.path));
    const base = { path: e.path, role: e.role, method: e.method, install: e.install, before: e.before, current: cur };
    const leave = (why: string): void => {
      plan.steps.push({ ...base, action: 'leave', after: cur, detail: why });
      plan.warnings.push(`${e.path}: ${why}`);
    };
    if (cur && cur.sha256 === e.after.sha256) {
      if (e.before) {
        plan.steps.push({ ...base, action: 'restore', after: e.before, detail: `restore the original ${e.path} (sha256 ${e.before.sha256.slice(0, 12)})` });
      } else {
        plan.steps.push({ ...base, action: 'remove', after: null, detail: `remove ${e.path} (created by apply)` });
      }
    } else if (e.before ? cur?.sha256 === e.before.sha256 : !cur) {
      plan.notes.push(`${e.path}: already as before apply`);
    } else if (!cur) {
      leave('missing (removed since apply); nothing to restore');
    } else {
      leave('changed since apply (mamba updated or reinstalled?); left as it is');
    }
  }
  // A file left alone that still loads the shim would stop working without it: keep the shim then.
  const users = plan.steps.filter((s) => s.action === 'leave' && s.role !== 'shim' && loadsShim(inPrefix(prefix, s.path)));
  const shim = plan.steps.find((s) => s.role === 'shim' && s.action !== 'leave');
  if (users.length > 0 && shim) {
    Object.assign(shim, { action: 'leave', after: shim.current, detail: `kept: still loaded by ${users.map((u) => u.path).join(', ')}` });
    plan.warnings.push(`${shim.path}: ${shim.detail}`);
  }
  return plan;
}

function loadsShim(file: string): boolean {
  try {
    const head = readHead(file);
    if (isElf(head)) return readElfFile(file, { symbols: false }).needed.some(isShimName);
    return head.toString('latin1').includes(LAUNCHER_MARKER);
  } catch {
    return false;
  }
}
