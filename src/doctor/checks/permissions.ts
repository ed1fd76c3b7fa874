/**
 * Permission checks on the shared parts of a prefix: group ownership, group write, setgid, sticky bits,
 * lock files and cache files. Each planned fix is a FixAction, so the finding's command and `--fix --yes`
 * are the same change.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shArg } from '../../hook/quote.js';
import { renderActions } from '../fixes.js';
import type { Check, CheckOutcome, DoctorContext, FixAction } from '../types.js';

const RWX = 0o070;
const RW = 0o060;
const SETGID = 0o2000;
const STICKY = 0o1000;

const label = (rel: string) => (rel === '' ? 'the prefix' : `${rel}/`);
const octal = (m: number) => (m & 0o7777).toString(8).padStart(4, '0');

/** Shared directories that exist (following symlinks: a symlinked pkgs/ is judged where it points). */
function dirs(ctx: DoctorContext, rels: string[]): string[] {
  return rels.filter((r) => ctx.stat(r)?.isDirectory());
}

interface Item {
  rel: string;
  st: fs.Stats;
}

/** Builds an outcome from the items that need actions: problem with the fix, else ok. */
function outcome(
  ctx: DoctorContext,
  bad: { item: Item; actions: FixAction[]; why: string }[],
  ok: string,
  summary: (n: number) => string,
): CheckOutcome {
  if (bad.length === 0) return { status: 'ok', finding: ok };
  const shown = bad.slice(0, 3).map((b) => b.why);
  const more = bad.length > 3 ? `, and ${bad.length - 3} more` : '';
  const actions = bad.flatMap((b) => b.actions);
  return {
    status: 'problem',
    finding: `${summary(bad.length)}: ${shown.join('; ')}${more}`,
    fix: renderActions(actions),
    actions,
    details: bad.map((b) => b.why),
  };
}

const describeItem = (ctx: DoctorContext, { rel, st }: Item) =>
  `${rel} (uid ${st.uid}, group ${ctx.groupName(st.gid)}, ${octal(st.mode)})`;

/** Group ownership plus group bits for a list of items: chgrp when the group differs, chmod for missing bits. */
function groupAccess(ctx: DoctorContext, items: Item[], bits: number) {
  return items.flatMap((item) => {
    const abs = path.join(ctx.prefix, item.rel);
    const actions: FixAction[] = [];
    if (item.st.gid !== ctx.gid) actions.push({ path: abs, op: 'chgrp', gid: ctx.gid });
    const missing = bits & ~item.st.mode;
    if (missing) actions.push({ path: abs, op: 'chmod', add: missing, remove: 0 });
    return actions.length ? [{ item, actions, why: describeItem(ctx, item) }] : [];
  });
}

const itemsOf = (ctx: DoctorContext, rels: string[], follow = true): Item[] =>
  rels.flatMap((rel) => {
    const st = follow ? ctx.stat(rel) : ctx.lstat(rel);
    return st ? [{ rel, st }] : [];
  });

/** Regular files in a shared directory whose names match. */
function filesIn(ctx: DoctorContext, dir: string, match: (name: string) => boolean): Item[] {
  if (!ctx.stat(dir)?.isDirectory()) return [];
  return fs
    .readdirSync(path.join(ctx.prefix, dir))
    .filter(match)
    .sort()
    .map((n) => path.posix.join(dir, n))
    .flatMap((rel) => {
      const st = ctx.lstat(rel);
      return st?.isFile() ? [{ rel, st }] : [];
    });
}

/** Group access on directories: the group, and group read/write/search. */
function dirWriteCheck(name: string, description: string, rels: string[], extraFiles: string[] = []): Check {
  return {
    name,
    description,
    run(ctx) {
      const items = [...itemsOf(ctx, dirs(ctx, rels)).map((i) => ({ i, bits: RWX })), ...itemsOf(ctx, extraFiles, false).filter((x) => x.st.isFile()).map((i) => ({ i, bits: RW }))];
      const bad = items.flatMap(({ i, bits }) => groupAccess(ctx, [i], bits).map((b) => ({ ...b, why: `${describeItem(ctx, i)} is not writable by group ${ctx.groupName(ctx.gid)}` })));
      const names = [...dirs(ctx, rels).map(label), ...extraFiles.filter((f) => ctx.lstat(f)?.isFile())].join(', ');
      return outcome(ctx, bad, names ? `${names}: group ${ctx.groupName(ctx.gid)} can write` : `nothing to check (${rels.map(label).join(', ')} absent)`, (n) => `${n} not group-writable`);
    },
  };
}

const SHARED_DIRS = ['', 'pkgs', 'pkgs/cache', 'conda-meta'];
const LOCK_DIRS = ['pkgs', 'pkgs/cache', 'conda-meta'];

export const PERMISSION_CHECKS: Check[] = [
  {
    name: 'prefix-group',
    description: "pkgs/, pkgs/cache and conda-meta/ belong to the prefix's group",
    run(ctx) {
      const items = itemsOf(ctx, dirs(ctx, SHARED_DIRS.slice(1)));
      const bad = items.flatMap((item) =>
        item.st.gid === ctx.gid
          ? []
          : [{ item, actions: [{ path: path.join(ctx.prefix, item.rel), op: 'chgrp', gid: ctx.gid } as FixAction], why: `${label(item.rel)} belongs to group ${ctx.groupName(item.st.gid)}` }],
      );
      const group = ctx.groupName(ctx.gid);
      const res = outcome(ctx, bad, `the prefix and its shared directories belong to group ${group}`, (n) => `${n} not in the prefix's group ${group}`);
      if (res.status === 'ok' && ctx.gid === 0) {
        return { status: 'warning', finding: `the prefix belongs to group ${group}: a shared prefix needs a group of its users`, fix: `chgrp -R <group> ${shArg(ctx.prefix)} && chmod -R g+w ${shArg(ctx.prefix)}` };
      }
      return res;
    },
  },
  dirWriteCheck('prefix-group-write', 'the prefix directory itself is group-writable', ['']),
  dirWriteCheck('pkgs-writable', 'pkgs/ (the package cache) and pkgs/urls.txt are group-writable', ['pkgs'], ['pkgs/urls.txt', 'pkgs/urls']),
  {
    name: 'cache-owner',
    description: 'pkgs/cache (channel index cache) is not one user\'s: it has the prefix\'s group and group write',
    run(ctx) {
      const cache = itemsOf(ctx, dirs(ctx, ['pkgs/cache']));
      if (cache.length === 0) return { status: 'ok', finding: 'pkgs/cache does not exist yet (the first mamba run creates it)' };
      const st = cache[0]!.st;
      const bad = groupAccess(ctx, cache, RWX).map((b) => ({ ...b, why: `pkgs/cache is owned by uid ${st.uid} (group ${ctx.groupName(st.gid)}, ${octal(st.mode)}): other users cannot write the index cache` }));
      const owner = st.uid === ctx.owner ? 'the prefix owner' : `uid ${st.uid}, not the prefix owner (mamba 2.x without the fix fails for everyone else: see patch-present)`;
      return outcome(ctx, bad, `pkgs/cache is group-writable by ${ctx.groupName(ctx.gid)}; owned by ${owner}`, () => 'pkgs/cache belongs to one user');
    },
  },
  dirWriteCheck('conda-meta-writable', 'conda-meta/ and conda-meta/history are group-writable', ['conda-meta'], ['conda-meta/history']),
  {
    name: 'setgid-dirs',
    description: 'the prefix, pkgs/, pkgs/cache and conda-meta/ are setgid, so new files get the group',
    run(ctx) {
      const bad = itemsOf(ctx, dirs(ctx, SHARED_DIRS)).flatMap((item) =>
        item.st.mode & SETGID
          ? []
          : [{ item, actions: [{ path: path.join(ctx.prefix, item.rel), op: 'chmod', add: SETGID, remove: 0 } as FixAction], why: `${label(item.rel)} (${octal(item.st.mode)})` }],
      );
      return outcome(ctx, bad, 'the shared directories are setgid', (n) => `${n} not setgid (new files get their creator's group)`);
    },
  },
  {
    name: 'sticky-cache',
    description: "no sticky bit on pkgs/, pkgs/cache or conda-meta/ (it forbids renaming over another user's file)",
    run(ctx) {
      const bad = itemsOf(ctx, dirs(ctx, LOCK_DIRS)).flatMap((item) =>
        item.st.mode & STICKY
          ? [{ item, actions: [{ path: path.join(ctx.prefix, item.rel), op: 'chmod', add: 0, remove: STICKY } as FixAction], why: `${label(item.rel)} (${octal(item.st.mode)})` }]
          : [],
      );
      return outcome(ctx, bad, 'no sticky bit on the shared directories', (n) => `${n} sticky: mamba cannot replace other users' cache files`);
    },
  },
  {
    name: 'lock-files',
    description: 'lock files (pkgs/pkgs.lock, pkgs/cache/*.lock, conda-meta/conda-meta.lock) are writable by the group',
    run(ctx) {
      const locks = LOCK_DIRS.flatMap((d) => filesIn(ctx, d, (n) => n.endsWith('.lock')));
      const bad = groupAccess(ctx, locks, RW).map((b) => ({ ...b, why: describeItem(ctx, b.item) }));
      return outcome(ctx, bad, locks.length ? `${locks.length} lock file(s), all group-writable` : 'no lock files yet', (n) => `${n} lock file(s) other users cannot open`);
    },
  },
  {
    name: 'cache-files',
    description: 'index cache files in pkgs/cache are writable by the group',
    run(ctx) {
      const files = filesIn(ctx, 'pkgs/cache', (n) => !n.endsWith('.lock'));
      const bad = groupAccess(ctx, files, RW).map((b) => ({ ...b, why: describeItem(ctx, b.item) }));
      return outcome(ctx, bad, files.length ? `${files.length} cache file(s), all group-writable` : 'no cache files yet', (n) => `${n} cache file(s) only their owner can refresh`);
    },
  },
];
