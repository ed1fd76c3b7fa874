/**
 * hardlinks: with fs.protected_hardlinks = 1 the kernel lets a user hard-link only a file they own, or one
 * they may read and write (and that is not setuid, nor setgid and group-executable); root may link anything.
 * Package files extracted into pkgs/ keep their archive's modes (0644, 0755), so every member but the one
 * who extracted them gets copies in their environments. Judged on a few files of each package; no fix is
 * automated (both ways out have a cost), the commands are printed.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { shArg } from '../../shell.js';
import { groupArg } from '../context.js';
import { describe, isDir, listEnvs, showPath } from '../envs.js';
import type { Check, DoctorContext } from '../types.js';

export const PROTECTED_HARDLINKS = '/proc/sys/fs/protected_hardlinks';
/** Files judged per package, and directory entries looked at to find them. */
const SAMPLE_FILES = 3;
const SAMPLE_ENTRIES = 200;
/** Packages whose size is read from info/paths.json; the rest are counted at their average. */
const SIZED_PACKAGES = 300;

/** The kernel's setting: 0 or 1, or undefined where /proc does not say. */
export function protectedHardlinks(file = PROTECTED_HARDLINKS): number | undefined {
  try {
    const v = Number.parseInt(fs.readFileSync(file, 'utf8').trim(), 10);
    return Number.isNaN(v) ? undefined : v;
  } catch {
    return undefined;
  }
}

/** Whether a member of the prefix's group who does not own the file may hard-link it (fs/namei.c may_linkat). */
export function linkableByMembers(st: fs.Stats, gid: number): boolean {
  if (st.mode & 0o4000 || (st.mode & 0o2010) === 0o2010) return false;
  return (st.gid === gid && (st.mode & 0o060) === 0o060) || (st.mode & 0o006) === 0o006;
}

/** Up to SAMPLE_FILES regular files of an extracted package, outside info/, depth first in name order. */
function sampleFiles(pkg: string): string[] {
  const out: string[] = [];
  const stack = [pkg];
  let seen = 0;
  while (stack.length && out.length < SAMPLE_FILES && seen < SAMPLE_ENTRIES) {
    const dir = stack.pop()!;
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1));
    } catch {
      continue;
    }
    const subdirs: string[] = [];
    for (const e of entries) {
      seen++;
      const abs = path.join(dir, e.name);
      if (e.isFile() && out.length < SAMPLE_FILES) out.push(abs);
      else if (e.isDirectory() && !(dir === pkg && e.name === 'info')) subdirs.push(abs);
    }
    stack.push(...subdirs.reverse());
  }
  return out;
}

/** Bytes an environment's copy of a package takes: info/paths.json sizes (hard-linked files only). */
function packageSize(pkg: string): number | undefined {
  try {
    const j = JSON.parse(fs.readFileSync(path.join(pkg, 'info', 'paths.json'), 'utf8')) as { paths?: { path_type?: string; size_in_bytes?: number }[] };
    if (!Array.isArray(j.paths)) return undefined;
    return j.paths.reduce((n, p) => n + (p.path_type === 'softlink' || p.path_type === 'directory' ? 0 : Number(p.size_in_bytes) || 0), 0);
  } catch {
    return undefined;
  }
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`;
}

interface Unlinkable {
  /** The uid that extracted it: the only member (with root) whose environments get hard links. */
  owner: number;
  example: string;
  size?: number;
}

/** Package directory name → what makes it unlinkable, for every extracted package in pkgs/. */
function scanPackages(ctx: DoctorContext, pkgs: string): { total: number; unlinkable: Map<string, Unlinkable> } {
  const unlinkable = new Map<string, Unlinkable>();
  let total = 0;
  for (const name of fs.readdirSync(pkgs).sort()) {
    const pkg = path.join(pkgs, name);
    if (name === 'cache' || !isDir(path.join(pkg, 'info'))) continue;
    total++;
    for (const f of sampleFiles(pkg)) {
      const st = fs.lstatSync(f, { throwIfNoEntry: false });
      if (!st?.isFile() || linkableByMembers(st, ctx.gid)) continue;
      unlinkable.set(name, { owner: st.uid, example: describe(ctx, f, st) });
      break;
    }
  }
  return { total, unlinkable };
}

/** The sizes of the unlinkable packages: read for up to SIZED_PACKAGES of them, the rest at the average. */
function sizeOf(pkgs: string, unlinkable: Map<string, Unlinkable>): (name: string) => number {
  const known: number[] = [];
  for (const [name, u] of [...unlinkable].slice(0, SIZED_PACKAGES)) {
    u.size = packageSize(path.join(pkgs, name));
    if (u.size !== undefined) known.push(u.size);
  }
  const average = known.length ? known.reduce((a, b) => a + b, 0) / known.length : 0;
  return (name) => unlinkable.get(name)?.size ?? average;
}

/** Each environment (the prefix's own included) with what its copies cost: packages it holds that its creator cannot link. */
function copyCosts(ctx: DoctorContext, unlinkable: Map<string, Unlinkable>, size: (name: string) => number) {
  const envs = [...(isDir(path.join(ctx.prefix, 'conda-meta')) ? [ctx.prefix] : []), ...listEnvs(ctx).map((e) => e.path)];
  return envs.map((env) => {
    const creator = fs.statSync(path.join(env, 'conda-meta'), { throwIfNoEntry: false })?.uid ?? -1;
    let names: string[] = [];
    try {
      names = fs.readdirSync(path.join(env, 'conda-meta')).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5));
    } catch {
      // unreadable records: nothing to count
    }
    const copied = creator === 0 ? [] : names.filter((n) => unlinkable.has(n) && unlinkable.get(n)!.owner !== creator);
    return { env: showPath(ctx, env), creator, bytes: copied.reduce((n, p) => n + size(p), 0) };
  });
}

export const hardlinks: Check = {
  name: 'hardlinks',
  description:
    'with fs.protected_hardlinks = 1, package files in pkgs/ that the group cannot read and write are copied, not hard-linked, into other members\' environments (sampled; the cost estimated from info/paths.json)',
  run(ctx) {
    const setting = protectedHardlinks();
    if (setting === undefined) return { status: 'ok', finding: `unknown: ${PROTECTED_HARDLINKS} cannot be read` };
    if (setting === 0) return { status: 'ok', finding: 'fs.protected_hardlinks = 0: every member can hard-link the package files' };
    const pkgs = path.join(ctx.prefix, 'pkgs');
    if (!isDir(pkgs)) return { status: 'ok', finding: 'no pkgs/ yet' };
    const { total, unlinkable } = scanPackages(ctx, pkgs);
    if (total === 0) return { status: 'ok', finding: 'no extracted packages in pkgs/' };
    if (unlinkable.size === 0) return { status: 'ok', finding: `fs.protected_hardlinks = 1; the ${total} package(s) in pkgs/ are group read+writable (sampled): members get hard links` };
    const size = sizeOf(pkgs, unlinkable);
    const costs = copyCosts(ctx, unlinkable, size);
    const now = costs.reduce((n, c) => n + c.bytes, 0);
    const paying = costs.filter((c) => c.bytes > 0);
    const perEnv = [...unlinkable.keys()].reduce((n, p) => n + size(p), 0);
    const g = shArg(groupArg(ctx.gid));
    const p = shArg(pkgs);
    const groupWritable = `find ${p} -mindepth 2 -type f ! -group ${g} -exec chgrp ${g} {} + && find ${p} -mindepth 2 -type f ! -perm -g+rw -exec chmod g+rw {} +`;
    const sysctl = 'sysctl -w fs.protected_hardlinks=0';
    const [first] = unlinkable.values();
    return {
      status: 'warning',
      finding:
        `fs.protected_hardlinks = 1 and ${unlinkable.size} of ${total} package(s) in pkgs/ are not group read+writable (e.g. ${first!.example}): ` +
        `environments of members other than the one who extracted them get copies, not hard links: about ${formatBytes(now)} of copies now in ${paying.length} of ${costs.length} environment(s), ` +
        `up to ${formatBytes(perEnv)} for each new one; ways out (not automated): group-writable package files (fix below; any member can then change files every environment shares) ` +
        `or \`${sysctl}\` (a system-wide hardening loss)`,
      fix: groupWritable,
      details: [
        `way out 1: ${groupWritable}  # cost: any group member can then modify a file that every environment hard-links; packages extracted later come 0644 again: repeat it after installs`,
        `way out 2: ${sysctl} && echo 'fs.protected_hardlinks = 0' > /etc/sysctl.d/99-zz-mambapatch-hardlinks.conf  # cost: the hard-link protection is gone for every user on the machine`,
        ...paying.map((c) => `${c.env}: about ${formatBytes(c.bytes)} of copies (created by uid ${c.creator})`),
        ...[...unlinkable].slice(0, 20).map(([name, u]) => `pkgs/${name}: ${u.example}${u.size === undefined ? '' : `, ${formatBytes(u.size)}`}`),
      ],
    };
  },
};
