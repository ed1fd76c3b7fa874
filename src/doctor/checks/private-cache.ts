/**
 * private-cache, for the user running doctor: mamba 2.x writes the channel index to the first writable
 * `<pkgs_dir>/cache` and packages to the first writable pkgs dir; when the shared `pkgs/cache` or `pkgs/`
 * is not writable for this user it silently falls back to `~/.mamba/pkgs` (conda to `~/.conda/pkgs`).
 * Their downloads are then no longer shared, and the fallback itself was seen failing with
 * `Error opening for writing "<home>/.mamba/pkgs/cache/<hash>.state.json": Is a directory`.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { shArg } from '../../shell.js';
import { octal } from '../../state/files.js';
import { configuredDirs } from '../condarc.js';
import { groupArg } from '../context.js';
import { renderActions } from '../fixes.js';
import type { Check, DoctorContext, FixAction } from '../types.js';

/** The private caches mamba and conda fall back to, relative to the home directory. */
const PRIVATE = ['.mamba/pkgs/cache', '.mamba/pkgs', '.conda/pkgs'];
/** What mamba writes as a file in an index cache: a directory of that name makes the write fail (EISDIR). */
const CACHE_FILE = /\.(json|solv|lock)$/;

/** access(2) with the real uid and groups, as mamba's own writability test does. */
function writable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK | fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The directory mamba would write into for `rel`: itself, or the nearest one that exists above it (it creates the rest). */
function nearest(ctx: DoctorContext, rel: string): string {
  let p = path.join(ctx.prefix, rel);
  while (p !== ctx.prefix && !fs.existsSync(p)) p = path.dirname(p);
  return p;
}

const expandHome = (ctx: DoctorContext, d: string) => path.resolve(d.replace(/^~(?=\/|$)/, ctx.home).replace(/^\$\{?HOME\}?(?=\/|$)/, ctx.home));

/** ~/.mamba/pkgs only counts for what it holds besides cache/ (and its bookkeeping files). */
function holdsSomething(dir: string, rel: string): boolean {
  try {
    const names = fs.readdirSync(dir);
    return rel === '.mamba/pkgs' ? names.some((n) => !['cache', 'urls', 'urls.txt', 'pkgs.lock'].includes(n)) : true;
  } catch {
    return false;
  }
}

function myName(uid: number): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(uid);
  }
}

export const privateCache: Check = {
  name: 'private-cache',
  description: "for you: the shared pkgs/ and pkgs/cache are writable (access(2) as you), so mamba does not fall back to a private cache in your home (~/.mamba/pkgs/cache, conda's ~/.conda/pkgs); and no such cache is left there",
  run(ctx) {
    const uid = process.getuid?.() ?? 0;
    const you = `uid ${uid}`;
    const configured = new Set(configuredDirs(ctx, 'pkgs_dirs', { CONDA_PKGS_DIRS: ',' }).flatMap((s) => s.dirs.map((d) => expandHome(ctx, d))));
    // Without a home directory (HOME unset, no passwd entry) there is no private cache to look for.
    const home = ctx.home ? (rel: string) => path.join(ctx.home, rel) : undefined;
    const present = (home ? PRIVATE : []).map((rel) => ({ rel, abs: home!(rel) })).filter(({ rel, abs }) => {
      const st = fs.lstatSync(abs, { throwIfNoEntry: false });
      return st?.isDirectory() && holdsSomething(abs, rel) && !configured.has(abs) && !configured.has(path.dirname(abs));
    });
    const broken: string[] = [];
    for (const cache of home ? [home('.mamba/pkgs/cache'), home('.conda/pkgs/cache')] : []) {
      try {
        for (const e of fs.readdirSync(cache, { withFileTypes: true })) if (e.isDirectory() && CACHE_FILE.test(e.name)) broken.push(path.join(cache, e.name));
      } catch {
        // absent
      }
    }
    const blocked = ['pkgs/cache', 'pkgs'].map((rel) => ({ rel, dir: nearest(ctx, rel) })).filter(({ dir }) => !writable(dir));
    const removeAll = present.length ? `rm -rf ${present.filter((p) => !present.some((q) => p.abs.startsWith(q.abs + '/'))).map((p) => shArg(p.abs)).join(' ')}` : '';
    const where = present.map((p) => p.abs).join(', ');

    if (blocked.length) {
      const dir = blocked[0]!.dir;
      const st = fs.statSync(dir);
      const mine = [process.getgid?.() ?? -1, ...(process.getgroups?.() ?? [])];
      const group = groupArg(st.gid);
      const actions: FixAction[] = [];
      const fix: string[] = [];
      let why: string;
      if (st.uid !== uid && !mine.includes(st.gid)) {
        why = `you are not in its group ${ctx.groupName(st.gid)} (root adds you; log in again after)`;
        fix.push(`usermod -aG ${shArg(group)} ${shArg(myName(uid))}`);
      } else if (st.uid !== uid && (st.mode & 0o030) !== 0o030) {
        why = `its group ${ctx.groupName(st.gid)} lacks write (uid ${st.uid}, ${octal(st.mode & 0o7777)})`;
        if (st.gid !== ctx.gid) actions.push({ path: dir, op: 'chgrp', gid: ctx.gid });
        actions.push({ path: dir, op: 'chmod', add: 0o2070 & ~st.mode, remove: 0 });
        fix.push(renderActions(actions));
      } else {
        why = `access(2) refuses although its mode (uid ${st.uid}, group ${ctx.groupName(st.gid)}, ${octal(st.mode & 0o7777)}) allows it: an ACL or a read-only file system (see getfacl, findmnt -T)`;
      }
      if (present.length) fix.push(removeAll);
      return {
        status: 'problem',
        finding:
          `${dir} is not writable for you (${you}): ${why}; mamba falls back to a private cache in ${path.join(ctx.home || '~', '.mamba/pkgs')} ` +
          `(conda: ${path.join(ctx.home || '~', '.conda/pkgs')}), so your downloads are not shared` +
          (present.length ? `; private cache(s) already there: ${where}` : '') +
          (broken.length ? `; and it will fail: ${broken.join(', ')} is a directory where mamba writes a file ("Is a directory")` : ''),
        ...(fix.length ? { fix: fix.join(' && ') } : {}),
        ...(actions.length ? { actions } : {}),
        details: [...blocked.map((b) => `${b.dir}: not writable for ${you}`), ...present.map((p) => `private cache: ${p.abs}`), ...broken],
      };
    }
    if (broken.length) {
      return {
        status: 'problem',
        finding: `your private cache has directories where mamba writes files: ${broken.join(', ')}: mamba fails with "Is a directory"; the shared pkgs/cache is writable for you, so the private cache can go`,
        fix: removeAll || `rm -rf ${broken.map(shArg).join(' ')}`,
        details: broken,
      };
    }
    if (present.length) {
      return {
        status: 'warning',
        finding: `private package cache(s) in your home: ${where}: left from when the shared pkgs/ or pkgs/cache was not writable for you (${you}); they are writable now, so remove them to share downloads again`,
        fix: removeAll,
        details: present.map((p) => p.abs),
      };
    }
    return { status: 'ok', finding: `pkgs/ and pkgs/cache are writable for you (${you}${uid === 0 ? ': root; run doctor as each member to check theirs' : ''}); ${ctx.home ? `no private cache in ${ctx.home}` : 'no home directory (HOME unset, no passwd entry): no private cache to look for'}` };
  },
};
