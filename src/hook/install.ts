/**
 * `hook install | uninstall | status`: the self-heal hook in `<prefix>/.mambapatch/hook.sh` (run by the
 * shim when a patched file was replaced during a mamba run) and, optionally, systemd units that run it
 * whenever conda-meta/ changes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MambapatchError } from '../errors.js';
import { writeFileAtomic } from '../fsutil/atomic.js';
import { readWatch, shimFile, statePaths } from './apply-api.js';
import { shQuote } from '../shell.js';
import { HOOK_MARKER, hookScript } from './script.js';
import { DEFAULT_UNIT_DIR, renderUnits, unitNames } from './systemd.js';
import { octal } from '../state/files.js';

export interface UnitFileResult {
  name: string;
  file: string;
  changed: boolean;
}

export interface SystemdResult {
  unitDir: string;
  units: UnitFileResult[];
  /** What the administrator runs next (mambapatch never runs systemctl). */
  next: string;
}

export interface InstallResult {
  prefix: string;
  hook: string;
  changed: boolean;
  systemd?: SystemdResult;
}

export interface SystemdOptions {
  systemd?: boolean;
  unitDir?: string;
}

const me = () => process.getuid?.() ?? 0;

function lstatOrNull(p: string): fs.Stats | null {
  try {
    return fs.lstatSync(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Writes `data` unless the file already holds exactly it with this mode and owner. */
function writeIfDifferent(file: string, data: string, mode: number): boolean {
  const st = lstatOrNull(file);
  if (st?.isFile() && (st.mode & 0o7777) === mode && st.uid === me() && fs.readFileSync(file, 'utf8') === data) return false;
  writeFileAtomic(file, data, { mode, uid: me(), gid: process.getgid?.() ?? 0 });
  return true;
}

/** Checked before anything is written, so a refusal leaves nothing half-installed. */
function requireWritable(dir: string, why: string): void {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw new MambapatchError(why, { file: dir });
  }
}

/** The prefix must have been patched (apply writes the watch file) and its state dir must be safe. */
function requirePatched(prefix: string): fs.Stats {
  const p = statePaths(prefix);
  if (readWatch(prefix) === undefined) {
    throw new MambapatchError(`not patched by mambapatch (no ${path.relative(prefix, p.watch)}); run \`mambapatch apply ${shQuote(prefix)}\` first`, { file: prefix });
  }
  const st = fs.lstatSync(p.dir);
  if (!st.isDirectory() || st.mode & 0o022) {
    throw new MambapatchError(`state directory is not a directory only its owner can write (mode ${octal(st.mode & 0o7777)}); the shim would not trust a hook in it`, { file: p.dir });
  }
  requireWritable(p.dir, `cannot write the state directory (owned by uid ${st.uid}): run this as its owner or root`);
  return st;
}

function unitDirOf(opts: SystemdOptions): string {
  const dir = path.resolve(opts.unitDir ?? DEFAULT_UNIT_DIR);
  if (!lstatOrNull(dir)?.isDirectory()) throw new MambapatchError('unit directory does not exist', { file: dir });
  requireWritable(dir, 'cannot write here: run as root, or choose another directory with --unit-dir');
  return dir;
}

export function installHook(prefix: string, opts: SystemdOptions = {}): InstallResult {
  const state = requirePatched(prefix);
  const hook = statePaths(prefix).hook;
  const unitDir = opts.systemd ? unitDirOf(opts) : undefined;
  const changed = writeIfDifferent(hook, hookScript(prefix), 0o755);
  const result: InstallResult = { prefix, hook, changed };
  if (unitDir) {
    // The service runs the hook as the owner of the state (apply trusts only its own state or root's).
    const units = renderUnits({ prefix, hook, uid: state.uid, gid: fs.statSync(prefix).gid, files: readWatch(prefix) });
    const pairs = [
      [units.names.path, units.pathUnit],
      [units.names.service, units.serviceUnit],
    ] as const;
    const files: UnitFileResult[] = pairs.map(([name, text]) => {
      const file = path.join(unitDir, name);
      return { name, file, changed: writeIfDifferent(file, text, 0o644) };
    });
    result.systemd = { unitDir, units: files, next: `systemctl daemon-reload && systemctl enable --now ${shQuote(units.names.path)}` };
  }
  return result;
}

export interface UninstallResult {
  prefix: string;
  hook: string;
  removed: string[];
  systemd?: { unitDir: string; next: string };
}

function removeIfPresent(file: string, removed: string[]): void {
  if (lstatOrNull(file) === null) return;
  fs.rmSync(file);
  removed.push(file);
}

export function uninstallHook(prefix: string, opts: SystemdOptions = {}): UninstallResult {
  const hook = statePaths(prefix).hook;
  const removed: string[] = [];
  const result: UninstallResult = { prefix, hook, removed };
  if (opts.systemd) {
    const unitDir = unitDirOf(opts);
    const names = unitNames(prefix);
    // `systemctl enable` leaves this link; without the unit it would dangle.
    removeIfPresent(path.join(unitDir, 'paths.target.wants', names.path), removed);
    removeIfPresent(path.join(unitDir, names.path), removed);
    removeIfPresent(path.join(unitDir, names.service), removed);
    result.systemd = { unitDir, next: `systemctl stop ${shQuote(names.path)}; systemctl daemon-reload` };
  }
  removeIfPresent(hook, removed);
  return result;
}

export interface HookStatus {
  prefix: string;
  hook: {
    path: string;
    installed: boolean;
    /** Written by mambapatch (carries the marker line). */
    ours: boolean;
    /** Identical to what `hook install` would write now (same node, CLI and prefix). */
    current: boolean;
    mode?: string;
    uid?: number;
    /** Whether the shim will run it (its rule: regular file owned by root or the shim's owner, not group/other-writable; state dir likewise). */
    trusted: boolean;
    why?: string;
  };
  watch: { path: string; present: boolean; files: { path: string; exists: boolean }[] };
  systemd: { unitDir: string; units: { name: string; file: string; present: boolean }[]; enabled: boolean };
}

/** The shim's trust rule, for reporting: why it would refuse the hook, or undefined when it would run it. */
function distrust(prefix: string, hook: fs.Stats | null): string | undefined {
  if (!hook) return 'not installed';
  const shim = lstatOrNull(shimFile(prefix));
  if (!shim) return `no shim at ${shimFile(prefix)} (the prefix is not patched)`;
  const dir = fs.lstatSync(statePaths(prefix).dir);
  const check = (st: fs.Stats, what: string, dirExpected: boolean): string | undefined => {
    if (dirExpected ? !st.isDirectory() : !st.isFile()) return `${what} is not a ${dirExpected ? 'directory' : 'regular file'}`;
    if (st.uid !== 0 && st.uid !== shim.uid) return `${what} is owned by uid ${st.uid}, not root or the shim's owner (uid ${shim.uid})`;
    if (st.mode & 0o022) return `${what} is writable by group or others (mode ${octal(st.mode & 0o7777)})`;
    return undefined;
  };
  return check(hook, 'hook.sh', false) ?? check(dir, 'the state directory', true);
}

export function hookStatus(prefix: string, opts: { unitDir?: string } = {}): HookStatus {
  const p = statePaths(prefix);
  const st = lstatOrNull(p.hook);
  const text = st?.isFile() ? fs.readFileSync(p.hook, 'utf8') : '';
  let expected: string | undefined;
  try {
    expected = hookScript(prefix);
  } catch {
    expected = undefined;
  }
  const why = distrust(prefix, st);
  const watched = readWatch(prefix);
  const unitDir = path.resolve(opts.unitDir ?? DEFAULT_UNIT_DIR);
  let units: HookStatus['systemd']['units'] = [];
  let enabled = false;
  try {
    const names = unitNames(prefix);
    units = [names.path, names.service].map((name) => {
      const file = path.join(unitDir, name);
      return { name, file, present: lstatOrNull(file) !== null };
    });
    enabled = lstatOrNull(path.join(unitDir, 'paths.target.wants', names.path)) !== null;
  } catch {
    // a prefix that cannot be a unit name has no units
  }
  return {
    prefix,
    hook: {
      path: p.hook,
      installed: st !== null,
      ours: text.split('\n')[1] === HOOK_MARKER,
      current: st !== null && text === expected,
      ...(st ? { mode: octal(st.mode & 0o7777), uid: st.uid } : {}),
      trusted: why === undefined,
      ...(why ? { why } : {}),
    },
    watch: {
      path: p.watch,
      present: watched !== undefined,
      files: (watched ?? []).map((f) => ({ path: f, exists: lstatOrNull(f) !== null })),
    },
    systemd: { unitDir, units, enabled },
  };
}
