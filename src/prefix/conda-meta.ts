/** The conda-meta records of the packages that carry mamba: name, version, build, files. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export const MAMBA_PACKAGES = ['mamba', 'libmamba', 'libmambapy', 'micromamba'] as const;
export type MambaPackage = (typeof MAMBA_PACKAGES)[number];

export interface PackageRecord {
  name: MambaPackage;
  version: string;
  build?: string;
  /** The record's path relative to the prefix, e.g. conda-meta/libmamba-1.1.0-h1234_0.json. */
  record: string;
  /** Files the package installed, relative to the prefix. */
  files: string[];
  /** The sha256 recorded for each file in `paths_data` (what `conda doctor` compares against). */
  sha256: Map<string, string>;
}

/** Reads only the records whose file name can belong to a mamba package; unreadable ones are skipped. */
export function readMambaRecords(prefix: string): PackageRecord[] {
  const dir = path.join(prefix, 'conda-meta');
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const out: PackageRecord[] = [];
  for (const n of names.sort()) {
    if (!n.endsWith('.json') || !MAMBA_PACKAGES.some((p) => n.startsWith(`${p}-`))) continue;
    try {
      const j = JSON.parse(fs.readFileSync(path.join(dir, n), 'utf8')) as Record<string, unknown>;
      const name = j.name as MambaPackage;
      if (!MAMBA_PACKAGES.includes(name) || typeof j.version !== 'string') continue;
      const files = Array.isArray(j.files) ? j.files.filter((f): f is string => typeof f === 'string') : [];
      const sha256 = new Map<string, string>();
      const paths = (j.paths_data as { paths?: { _path?: unknown; sha256?: unknown }[] } | undefined)?.paths;
      for (const p of Array.isArray(paths) ? paths : []) {
        if (typeof p?._path === 'string' && typeof p.sha256 === 'string') sha256.set(p._path, p.sha256);
      }
      out.push({ name, version: j.version, build: typeof j.build === 'string' ? j.build : undefined, record: `conda-meta/${n}`, files, sha256 });
    } catch {
      // a broken record is not ours to judge
    }
  }
  return out;
}
