/**
 * Permission checks on the shared parts of a prefix: group ownership, group write, setgid, sticky bits,
 * lock files and cache files. Each fix is a FixAction, so the command a finding shows and what
 * `--fix --yes` does are the same change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shArg } from '../../shell.js';
import { octal } from '../../state/files.js';
import { renderActions } from '../fixes.js';
import type { Check, CheckOutcome, DoctorContext, FixAction } from '../types.js';

const RWX = 0o070;
const RW = 0o060;
const SETGID = 0o2000;
const STICKY = 0o1000;

const SHARED_DIRS = ['', 'pkgs', 'pkgs/cache', 'conda-meta'];
const LOCK_DIRS = ['pkgs', 'pkgs/cache', 'conda-meta'];

interface Item {
  rel: string;
  st: fs.Stats;
}

/** Something wrong with one item: what fixes it, and one line on what is wrong. */
interface Bad {
  actions: FixAction[];
  why: string;
}

const label = (rel: string) => (rel === '' ? 'the prefix' : `${rel}/`);
const abs = (ctx: DoctorContext, rel: string) => path.join(ctx.prefix, rel);
const chgrp = (ctx: DoctorContext, rel: string): FixAction => ({ path: abs(ctx, rel), op: 'chgrp', gid: ctx.gid });
const chmod = (ctx: DoctorContext, rel: string, add: number, remove = 0): FixAction => ({ path: abs(ctx, rel), op: 'chmod', add, remove });
const describe = (ctx: DoctorContext, { rel, st }: Item) => `${rel} (uid ${st.uid}, group ${ctx.groupName(st.gid)}, ${octal(st.mode & 0o7777)})`;

/** The directories among `rels` that exist (followed: a symlinked pkgs/ is judged where it points). */
const dirsOf = (ctx: DoctorContext, rels: string[]): Item[] =>
  rels.flatMap((rel) => {
    const st = ctx.stat(rel);
    return st?.isDirectory() ? [{ rel, st }] : [];
  });

/** The regular files among `rels` (symlinks are not judged). */
const filesOf = (ctx: DoctorContext, rels: string[]): Item[] =>
  rels.flatMap((rel) => {
    const st = ctx.lstat(rel);
    return st?.isFile() ? [{ rel, st }] : [];
  });

/** The regular files in a shared directory whose names match. */
function filesIn(ctx: DoctorContext, dir: string, match: (name: string) => boolean): Item[] {
  if (!ctx.stat(dir)?.isDirectory()) return [];
  const names = fs.readdirSync(abs(ctx, dir)).filter(match).sort();
  return filesOf(ctx, names.map((n) => path.posix.join(dir, n)));
}

/** The prefix's group and the group bits `bits` for one item: chgrp and chmod as needed, or null. */
function groupAccess(ctx: DoctorContext, item: Item, bits: number, why = describe(ctx, item)): Bad | null {
  const actions: FixAction[] = [];
  if (item.st.gid !== ctx.gid) actions.push(chgrp(ctx, item.rel));
  const missing = bits & ~item.st.mode;
  if (missing) actions.push(chmod(ctx, item.rel, missing));
  return actions.length ? { actions, why } : null;
}

/** ok with `ok`, or a problem naming the first items, with every fix. */
function outcome(bad: (Bad | null)[], ok: string, summary: string): CheckOutcome {
  const found = bad.filter((b): b is Bad => b !== null);
  if (found.length === 0) return { status: 'ok', finding: ok };
  const more = found.length > 3 ? `; and ${found.length - 3} more` : '';
  const actions = found.flatMap((b) => b.actions);
  return {
    status: 'problem',
    finding: `${found.length} ${summary}: ${found.slice(0, 3).map((b) => b.why).join('; ')}${more}`,
    fix: renderActions(actions),
    actions,
    details: found.map((b) => b.why),
  };
}

/** Group write on some directories (rwx) and files (rw). */
function groupWriteCheck(name: string, description: string, dirs: string[], files: string[] = []): Check {
  return {
    name,
    description,
    run(ctx) {
      const items = [...dirsOf(ctx, dirs).map((i) => [i, RWX] as const), ...filesOf(ctx, files).map((i) => [i, RW] as const)];
      const group = ctx.groupName(ctx.gid);
      const bad = items.map(([i, bits]) => groupAccess(ctx, i, bits, `${describe(ctx, i)} is not writable by group ${group}`));
      const names = items.map(([i]) => (i.st.isDirectory() ? label(i.rel) : i.rel)).join(', ');
      return outcome(bad, names ? `${names}: group ${group} can write` : `nothing to check (${dirs.map(label).join(', ')} absent)`, 'not group-writable');
    },
  };
}

/** Group read/write on files found in the shared directories. */
function groupFilesCheck(name: string, description: string, find: (ctx: DoctorContext) => Item[], what: string, summary: string): Check {
  return {
    name,
    description,
    run(ctx) {
      const files = find(ctx);
      const ok = files.length ? `${files.length} ${what}, all group-writable` : `no ${what} yet`;
      return outcome(files.map((f) => groupAccess(ctx, f, RW)), ok, summary);
    },
  };
}

export const PERMISSION_CHECKS: Check[] = [
  {
    name: 'prefix-group',
    description: "pkgs/, pkgs/cache and conda-meta/ belong to the prefix's group",
    run(ctx) {
      const group = ctx.groupName(ctx.gid);
      const bad = dirsOf(ctx, SHARED_DIRS.slice(1)).map((i) =>
        i.st.gid === ctx.gid ? null : { actions: [chgrp(ctx, i.rel)], why: `${label(i.rel)} belongs to group ${ctx.groupName(i.st.gid)}` },
      );
      const res = outcome(bad, `the prefix and its shared directories belong to group ${group}`, `not in the prefix's group ${group}`);
      if (res.status === 'ok' && ctx.gid === 0) {
        const p = shArg(ctx.prefix);
        return { status: 'warning', finding: `the prefix belongs to group ${group}: a shared prefix needs a group of its users`, fix: `chgrp -R <group> ${p} && chmod -R g+w ${p}` };
      }
      return res;
    },
  },
  groupWriteCheck('prefix-group-write', 'the prefix directory itself is group-writable', ['']),
  groupWriteCheck('pkgs-writable', 'pkgs/ (the package cache), pkgs/urls.txt and pkgs/urls are group-writable', ['pkgs'], ['pkgs/urls.txt', 'pkgs/urls']),
  {
    name: 'cache-owner',
    description: "pkgs/cache (the channel index cache) is not one user's: it has the prefix's group and group write",
    run(ctx) {
      const [cache] = dirsOf(ctx, ['pkgs/cache']);
      if (!cache) return { status: 'ok', finding: 'pkgs/cache does not exist yet (the first mamba run creates it)' };
      const { uid, gid, mode } = cache.st;
      const why = `pkgs/cache is owned by uid ${uid} (group ${ctx.groupName(gid)}, ${octal(mode & 0o7777)}): other users cannot write the index cache`;
      const owner = uid === ctx.owner ? 'the prefix owner' : `uid ${uid}, not the prefix owner (unpatched mamba 2.x fails for everyone else: see patch-present)`;
      return outcome([groupAccess(ctx, cache, RWX, why)], `pkgs/cache is group-writable by ${ctx.groupName(ctx.gid)}; owned by ${owner}`, 'pkgs/cache belongs to one user');
    },
  },
  groupWriteCheck('conda-meta-writable', 'conda-meta/ and conda-meta/history are group-writable', ['conda-meta'], ['conda-meta/history']),
  {
    name: 'setgid-dirs',
    description: 'the prefix, pkgs/, pkgs/cache and conda-meta/ are setgid, so new files get the group',
    run(ctx) {
      const bad = dirsOf(ctx, SHARED_DIRS).map((i) =>
        i.st.mode & SETGID ? null : { actions: [chmod(ctx, i.rel, SETGID)], why: `${label(i.rel)} (${octal(i.st.mode & 0o7777)})` },
      );
      return outcome(bad, 'the shared directories are setgid', "not setgid (new files get their creator's group)");
    },
  },
  {
    name: 'sticky-cache',
    description: "no sticky bit on pkgs/, pkgs/cache or conda-meta/ (it forbids renaming over another user's file)",
    run(ctx) {
      const bad = dirsOf(ctx, LOCK_DIRS).map((i) =>
        i.st.mode & STICKY ? { actions: [chmod(ctx, i.rel, 0, STICKY)], why: `${label(i.rel)} (${octal(i.st.mode & 0o7777)})` } : null,
      );
      return outcome(bad, 'no sticky bit on the shared directories', "sticky: mamba cannot replace other users' cache files");
    },
  },
  groupFilesCheck(
    'lock-files',
    'lock files (pkgs/pkgs.lock, pkgs/cache/*.lock, conda-meta/conda-meta.lock) are writable by the group',
    (ctx) => LOCK_DIRS.flatMap((d) => filesIn(ctx, d, (n) => n.endsWith('.lock'))),
    'lock file(s)',
    'lock file(s) other users cannot open',
  ),
  groupFilesCheck(
    'cache-files',
    'index cache files in pkgs/cache are writable by the group',
    (ctx) => filesIn(ctx, 'pkgs/cache', (n) => !n.endsWith('.lock')),
    'cache file(s)',
    'cache file(s) only their owner can refresh',
  ),
];
