/**
 * State is trusted only when the invoking user or root owns it and nobody else can write it: a manifest
 * or backup someone else could edit would let them choose what `revert` writes into the prefix.
 */
import * as fs from 'node:fs';
import { MambapatchError } from '../errors.js';
import { octal, walkTree } from './files.js';
import type { StatePaths } from './paths.js';

function trusted(file: string, expectDir: boolean): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const me = process.getuid?.() ?? 0;
  const why = (reason: string) =>
    new MambapatchError(
      `untrusted mambapatch state: ${reason}. Only the user who applied (or root) may own it, and only they may write it; ` +
        `inspect it, then fix ownership/permissions (or remove it) before running mambapatch again`,
      { file },
    );
  if (st.isSymbolicLink()) throw why('it is a symbolic link');
  if (expectDir ? !st.isDirectory() : !st.isFile()) throw why(expectDir ? 'not a directory' : 'not a regular file');
  if (st.uid !== me && st.uid !== 0) throw why(`owned by uid ${st.uid}, not by you (uid ${me}) or root`);
  if (st.mode & 0o022) throw why(`mode ${octal(st.mode & 0o7777)} lets group or others write it`);
}

/** Throws (exit 1) unless the state directory and the files mambapatch reads from it are trusted. */
export function checkTrusted(p: StatePaths): void {
  trusted(p.dir, true);
  for (const f of [p.manifest, p.backup, p.journal, p.lock, p.watch]) trusted(f, false);
  trusted(p.originals, true);
  // Directories below originals/ mirror the prefix; they must be as safe as the state dir.
  walkTree(p.originals, (abs, d) => {
    if (d.isDirectory()) trusted(abs, true);
  });
}
