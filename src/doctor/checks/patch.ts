/** Checks on mambapatch's own fix: present and current, and what `conda doctor` will say about it. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { checkPatch, readWatch } from '../../hook/apply-api.js';
import { shArg } from '../../shell.js';
import { readMambaRecords } from '../../prefix/conda-meta.js';
import { sha256File } from '../../state/files.js';
import type { Check, DoctorContext } from '../types.js';

const patchPresent: Check = {
  name: 'patch-present',
  description: 'the mambapatch fix is present and current for the installed mamba versions (mambapatch status --check)',
  run(ctx) {
    const r = checkPatch(ctx.prefix, ctx.status);
    const apply = `mambapatch apply ${shArg(ctx.prefix)}`;
    if (r.state === 'current') return { status: 'ok', finding: `the fix is present and current, or nothing installed needs it${r.summary ? ` (${r.summary})` : ''}` };
    if (r.state === 'missing') return { status: 'problem', finding: `the fix is missing or stale: ${r.summary}`, fix: apply };
    return { status: 'warning', finding: r.summary, fix: `mambapatch status ${shArg(ctx.prefix)}` };
  },
};

/** paths_data of the mamba packages' records: relative path → package and recorded sha256. */
function recordedPaths(ctx: DoctorContext): Map<string, { pkg: string; sha256: string }> {
  const out = new Map<string, { pkg: string; sha256: string }>();
  for (const rec of readMambaRecords(ctx.prefix)) {
    for (const [rel, sha256] of rec.sha256) out.set(rel, { pkg: `${rec.name}-${rec.version}`, sha256 });
  }
  return out;
}

const condaDoctorAltered: Check = {
  name: 'conda-doctor-altered',
  description: '`conda doctor` reports the patched files as altered (their sha256 differs from conda-meta)',
  run(ctx) {
    const watched = readWatch(ctx.prefix) ?? [];
    if (watched.length === 0) return { status: 'ok', finding: 'no patched files' };
    const records = recordedPaths(ctx);
    const altered: string[] = [];
    for (const abs of watched) {
      const rel = path.relative(ctx.prefix, abs);
      const rec = records.get(rel);
      if (!rec?.sha256 || !fs.existsSync(abs)) continue;
      if (sha256File(abs) !== rec.sha256) altered.push(`${rel} (${rec.pkg})`);
    }
    if (altered.length === 0) return { status: 'ok', finding: 'no patched file differs from its conda-meta record' };
    return {
      status: 'warning',
      finding:
        `conda doctor will report ${altered.length} patched file(s) as altered: ${altered.join(', ')}; expected (mambapatch changed them). ` +
        '`conda doctor --fix` would reinstall the package and remove the fix: re-apply afterwards (or install the hook)',
      fix: `mambapatch hook install ${shArg(ctx.prefix)}`,
      details: altered,
    };
  },
};

export const PATCH_CHECKS: Check[] = [patchPresent, condaDoctorAltered];
