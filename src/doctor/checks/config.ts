/** Checks on how new files will be created: default ACLs, the umask, and where the package caches are. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shArg } from '../../shell.js';
import { octal } from '../../state/files.js';
import { configuredDirs, sharedDir } from '../condarc.js';
import type { Check } from '../types.js';

const ACL_DIRS = ['pkgs', 'pkgs/cache', 'conda-meta'];

/** The kernel's umask for this process (/proc/self/status), else Node's. */
export function currentUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) return parseInt(m[1]!, 8);
  } catch {
    // not Linux /proc
  }
  return process.umask();
}

/** Default ACL entries of a directory via getfacl, or undefined when getfacl is not installed. */
function defaultAcl(dir: string): string[] | undefined {
  const r = spawnSync('getfacl', ['--absolute-names', '--default', '--omit-header', dir], { encoding: 'utf8' });
  if (r.error) return undefined;
  if (r.status !== 0) throw new Error(`getfacl ${dir}: ${r.stderr.trim().split('\n')[0]}`);
  return r.stdout.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
}

/** Whether a default ACL gives the owning group write (group:: entry, limited by mask:: when present). */
function aclGivesGroupWrite(entries: string[]): boolean {
  const perm = (tag: string) => entries.find((e) => e.startsWith(tag))?.split(':')[2] ?? '';
  const mask = perm('default:mask::') || perm('mask::');
  const group = perm('default:group::') || perm('group::');
  return group.includes('w') && (mask === '' || mask.includes('w'));
}

const defaultAclCheck: Check = {
  name: 'default-acl',
  description: 'default ACLs on pkgs/, pkgs/cache and conda-meta/ make new files group-writable whatever the umask',
  run(ctx) {
    const present = ACL_DIRS.filter((r) => ctx.stat(r)?.isDirectory());
    const abs = present.map((r) => path.join(ctx.prefix, r));
    const acls = abs.map(defaultAcl);
    if (acls.some((a) => a === undefined)) return { status: 'ok', finding: 'unknown: getfacl is not installed (package acl)' };
    const without = present.filter((_, i) => !aclGivesGroupWrite(acls[i]!));
    if (without.length === 0) return { status: 'ok', finding: present.length ? 'default ACLs give the group write on new files' : 'no shared directories yet' };
    const fix = `setfacl -d -m u::rwx,g::rwx,o::rx ${without.map((r) => shArg(path.join(ctx.prefix, r))).join(' ')}`;
    const umask = currentUmask();
    if (umask & 0o020) {
      return { status: 'warning', finding: `no default ACL on ${without.join(', ')} and your umask is ${octal(umask)}: files you create there will not be group-writable`, fix };
    }
    return { status: 'ok', finding: `no default ACL on ${without.join(', ')}: every user's umask must be 002 (yours is ${octal(umask)})`, fix };
  },
};

const umaskCheck: Check = {
  name: 'umask',
  description: 'your umask lets the group write what you create (lock files, cache files)',
  run() {
    const umask = currentUmask();
    if (umask & 0o020) {
      return {
        status: 'warning',
        finding: `umask ${octal(umask)}: lock and cache files you create will block other users; use umask 002 for everyone using the prefix (e.g. in /etc/profile.d/)`,
        fix: 'umask 002',
      };
    }
    return { status: 'ok', finding: `umask ${octal(umask)} keeps group write` };
  },
};

const pkgsDirsCheck: Check = {
  name: 'pkgs-dirs-config',
  description: 'where pkgs_dirs (.condarc, .mambarc, CONDA_PKGS_DIRS) puts the package caches, and whether a shared one is group-writable',
  run(ctx) {
    const sources = configuredDirs(ctx, 'pkgs_dirs', { CONDA_PKGS_DIRS: ',' });
    if (sources.length === 0) return { status: 'ok', finding: `no pkgs_dirs configured: everyone shares ${path.join(ctx.prefix, 'pkgs')}` };
    const where = sources.map((s) => `${s.from}: ${s.dirs.join(', ')}`).join('; ');
    const shared = sources.flatMap((s) => s.dirs).filter((d) => sharedDir(ctx, d));
    const notWritable = shared.filter((d) => {
      try {
        return (fs.statSync(d).mode & 0o020) === 0;
      } catch {
        return false;
      }
    });
    if (notWritable.length) {
      return {
        status: 'warning',
        finding: `shared package cache(s) not group-writable: ${notWritable.join(', ')} (${where})`,
        fix: `chmod g+ws ${notWritable.map(shArg).join(' ')}`,
      };
    }
    const kind = shared.length ? 'shared' : 'per-user';
    return { status: 'ok', finding: `${kind} package caches configured (${where})` };
  },
};

export const CONFIG_CHECKS: Check[] = [defaultAclCheck, umaskCheck, pkgsDirsCheck];
