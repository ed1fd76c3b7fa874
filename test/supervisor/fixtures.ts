/**
 * Fixtures for the supervisor tests: static (-static, -static-pie) programs, each plain and hooked the way
 * users get it, `mambapatch elf add-entry-hook FILE --output OUT` with the shipped blob (cached by the
 * program and the blob).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { prebuiltHook } from '../../src/supervisor/blob.js';
import { cachedBuild } from '../helpers/build.js';
import { ROOT, type Target } from '../shim/fixtures.js';

export const CLI = path.join(ROOT, 'dist/src/cli.js');
export const HOOK_DIR = path.join(ROOT, 'test/supervisor');
export type StaticKind = 'static' | 'static-pie';

export interface Program {
  plain: string;
  hooked: string;
}

/** Builds `sources` with `compiler` as a fully static program of `kind`, plain and hooked. */
export function staticProgram(
  t: Target,
  req: { name: string; compiler: string; args: string[]; sources: string[]; after?: string[] },
  kind: StaticKind,
): Program {
  const link = kind === 'static' ? ['-static'] : ['-fPIE', '-static-pie'];
  const plain = cachedBuild({ ...req, args: [...req.args, ...link] });
  // keyed by the blob too: a rebuilt blob must not meet a file hooked with the old one
  const blob = createHash('sha256').update(fs.readFileSync(prebuiltHook(t.arch))).digest('hex').slice(0, 12);
  const hooked = `${plain}.hooked-${blob}`;
  if (!fs.existsSync(hooked)) {
    const tmp = `${hooked}.tmp${process.pid}`;
    const r = spawnSync(process.execPath, [CLI, 'elf', 'add-entry-hook', plain, '--output', tmp], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`elf add-entry-hook ${plain}: ${r.stderr}`);
    fs.chmodSync(tmp, 0o755);
    fs.renameSync(tmp, hooked);
  }
  return { plain, hooked };
}

/** The shim's `calls` driver and the scenario driver, static and static-pie. */
export function drivers(t: Target, kind: StaticKind): { calls: Program; scenarios: Program } {
  return {
    calls: staticProgram(t, { name: 'calls', compiler: t.gcc, args: ['-O1'], sources: [path.join(ROOT, 'test/shim/calls.c')] }, kind),
    scenarios: staticProgram(
      t,
      { name: 'scenarios', compiler: t.gcc, args: ['-O1', '-pthread'], sources: [path.join(HOOK_DIR, 'scenarios.c')] },
      kind,
    ),
  };
}

/** Live (not zombie) supervisor processes whose environment carries `token`. */
export function liveSupervisors(token: string): number[] {
  const found: number[] = [];
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      if (fs.readFileSync(`/proc/${ent}/comm`, 'utf8').trim() !== 'mambapatch-sup') continue;
      const state = /^State:\s+(\S)/m.exec(fs.readFileSync(`/proc/${ent}/status`, 'utf8'))?.[1];
      if (state === 'Z' || state === 'X') continue;
      if (fs.readFileSync(`/proc/${ent}/environ`, 'latin1').split('\0').includes(token)) found.push(Number(ent));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}
