/** A fast walk over the directories of a large tree (an environment can hold hundreds of thousands of files). */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface WalkStats {
  /** Directories visited. */
  dirs: number;
  /** Directories that could not be read (not descended), with the error code. */
  unreadable: { path: string; code: string }[];
}

/**
 * File systems whose directory link count is 2 + the number of subdirectories, so a directory with a link
 * count of 2 has none and need not be read (GNU find's leaf optimisation, with gnulib's list of file
 * systems known to keep the count exact): ext2/3/4, XFS, tmpfs. Elsewhere (btrfs and overlayfs report 1)
 * every directory is read.
 */
const EXACT_LINK_COUNT = new Set([0xef53, 0x58465342, 0x01021994]);

function exactLinkCount(dir: string): boolean {
  try {
    return EXACT_LINK_COUNT.has(fs.statfsSync(dir).type);
  } catch {
    return false;
  }
}

/**
 * Visits `root` and every directory below it, depth first in name order, never following a symlink and
 * never stat'ing a file: only directories are stat'ed, and a leaf directory (see EXACT_LINK_COUNT) is not
 * even read. `visit` returns false to stop the walk.
 */
export function walkDirs(root: string, visit: (abs: string, st: fs.Stats) => boolean | void): WalkStats {
  const out: WalkStats = { dirs: 0, unreadable: [] };
  const rootSt = fs.lstatSync(root, { throwIfNoEntry: false });
  if (!rootSt?.isDirectory()) return out;
  const leavesKnown = exactLinkCount(root);
  const stack: [string, fs.Stats][] = [[root, rootSt]];
  while (stack.length) {
    const [dir, st] = stack.pop()!;
    out.dirs++;
    if (visit(dir, st) === false) break;
    // Another file system mounted inside has its own rules: read it.
    if (leavesKnown && st.nlink === 2 && st.dev === rootSt.dev) continue;
    let names: string[];
    try {
      names = fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
    } catch (e) {
      out.unreadable.push({ path: dir, code: (e as NodeJS.ErrnoException).code ?? String(e) });
      continue;
    }
    // Pushed in reverse name order, popped in name order.
    for (const n of names.sort().reverse()) {
      const sub = path.join(dir, n);
      const subSt = fs.lstatSync(sub, { throwIfNoEntry: false });
      if (subSt?.isDirectory()) stack.push([sub, subSt]);
    }
  }
  return out;
}
