/**
 * Conda-style version comparison, enough for libmamba/mamba/micromamba release numbers:
 * numeric segments compared as numbers, anything else as text ("2.0.0rc1" < "2.0.0").
 */
export function compareVersions(a: string, b: string): number {
  const pa = split(a);
  const pb = split(b);
  const n = Math.max(pa.length, pb.length);
  for (let i = 0; i < n; i++) {
    const x = pa[i] ?? 0;
    const y = pb[i] ?? 0;
    if (x === y) continue;
    if (typeof x === 'number' && typeof y === 'number') return x < y ? -1 : 1;
    // A pre-release tag sorts before the release ("rc1" < 0 means 2.0.0rc1 < 2.0.0.0).
    if (typeof x === 'string' && typeof y === 'number') return -1;
    if (typeof x === 'number' && typeof y === 'string') return 1;
    return String(x) < String(y) ? -1 : 1;
  }
  return 0;
}

function split(v: string): (number | string)[] {
  const out: (number | string)[] = [];
  for (const part of v.toLowerCase().split(/[._+-]/)) {
    for (const m of part.matchAll(/(\d+)|([a-z]+)/g)) out.push(m[1] !== undefined ? Number(m[1]) : m[2]!);
  }
  return out;
}
