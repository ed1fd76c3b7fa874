/**
 * Finds mamba in a prefix and decides what each install is, from the files themselves (the ELF, not the
 * name) and the conda-meta records: mamba 1.x (a Python console script + libmamba), mamba 2.x (an ELF linked
 * to libmamba.so.N), micromamba (dynamic or fully static). Several installs can coexist.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readElfFile } from '../elf/index.js';
import { EDITABLE_ARCHES as HOOK_ARCHES } from '../elf/constants.js';
import { MambapatchError } from '../errors.js';
import { isPythonInterpreter, parseInterpreter } from '../launcher/shebang.js';
import { LAUNCHER_MARKER } from '../launcher/launcher.js';
import { readMambaRecords, type PackageRecord } from './conda-meta.js';
import { failuresFor, type FailureId, type FailureReport } from './known-failures.js';

export const SHIM_NAME = 'libmambapatch.so';

export type InstallKind = 'mamba1' | 'mamba2' | 'micromamba';

export interface Install {
  kind: InstallKind;
  /** The entry point, relative to the prefix (bin/mamba, condabin/mamba, bin/micromamba), or absolute for an executable outside it (`apply --exe`). */
  entry: string;
  /** 'elf' for an executable, 'script' for a console script. */
  format: 'elf' | 'script';
  /** Fully static (no PT_DYNAMIC, or a static-pie): nothing can be loaded into it; method `supervise`. */
  static: boolean;
  arch?: string;
  /** For mamba 1.x: the real libmamba files (relative), the `needed` method's targets. */
  libmamba: string[];
  /** For a script: its interpreter. */
  interpreter?: string;
  /** The package record the version came from. */
  versionFrom?: string;
  failures: FailureReport;
  /** Already carries the fix without our state (e.g. the state was deleted). */
  shimPresent?: 'needed' | 'launcher' | 'supervise';
  /** Why it cannot be patched, when it cannot. */
  unsupported?: string;
}

export interface Detection {
  prefix: string;
  records: PackageRecord[];
  installs: Install[];
  /** Entry points looked at and why they were not taken (symlinks, unknown scripts). */
  skipped: { path: string; reason: string }[];
}

const ENTRY_POINTS = ['bin/mamba', 'condabin/mamba', 'bin/micromamba', 'condabin/micromamba'];

/**
 * `exes`: executables outside the prefix that serve it (`apply --exe`, or recorded in the manifest), by
 * absolute path; each must be an ELF file.
 */
export function detect(prefix: string, exes: string[] = []): Detection {
  const records = readMambaRecords(prefix);
  const version = (name: string) => records.find((r) => r.name === name);
  const installs: Install[] = [];
  const skipped: Detection['skipped'] = [];
  for (const rel of [...ENTRY_POINTS, ...exes]) {
    const outside = path.isAbsolute(rel);
    const abs = path.resolve(prefix, rel);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(abs);
    } catch (e) {
      if (outside) throw new MambapatchError(`cannot use --exe: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file: abs });
      continue;
    }
    if (outside && (st.isSymbolicLink() || !st.isFile())) {
      throw new MambapatchError(`cannot use --exe: ${st.isSymbolicLink() ? `a symlink (name its target, ${fs.realpathSync(abs)})` : 'not a regular file'}`, { file: abs });
    }
    if (st.isSymbolicLink()) {
      skipped.push({ path: rel, reason: `symlink to ${fs.readlinkSync(abs)} (the target is what gets patched)` });
      continue;
    }
    if (!st.isFile()) {
      skipped.push({ path: rel, reason: 'not a regular file' });
      continue;
    }
    const head = readHead(abs);
    const isMicro = path.basename(rel) === 'micromamba';
    if (outside && !isElf(head)) throw new MambapatchError('cannot use --exe: not an ELF executable', { file: abs });
    if (isElf(head)) {
      const elf = readElfFile(abs, { symbols: false });
      const libmambaNeeded = elf.needed.some((n) => /^libmamba\.so(\.\d+)*$/.test(n));
      const kind: InstallKind = isMicro ? 'micromamba' : 'mamba2';
      // An executable outside the prefix has no record of its own there: its version is unknown.
      const rec = outside ? undefined : isMicro ? version('micromamba') : (version('libmamba') ?? version('mamba'));
      const guess: FailureId[] = kind === 'mamba2' || libmambaNeeded ? ['chmod-pkgs-cache'] : [];
      // No loader runs for it: no PT_DYNAMIC, or a static-pie (it relocates itself; no PT_INTERP).
      const selfContained = !elf.isDynamic || !elf.interpreter;
      const inst: Install = {
        kind,
        entry: rel,
        format: 'elf',
        static: selfContained,
        arch: elf.machine,
        libmamba: [],
        versionFrom: rec?.record,
        failures: failuresFor(rec?.version, guess),
        shimPresent: elf.entryHook ? 'supervise' : elf.needed.some(isShimName) ? 'needed' : undefined,
      };
      if (selfContained && !HOOK_ARCHES.includes(elf.machine)) {
        inst.unsupported = `${rel} is fully static and for ${elf.machine}: the supervisor exists for ${HOOK_ARCHES.join(', ')} only`;
      }
      installs.push(inst);
      continue;
    }
    const text = head.toString('latin1');
    if (!text.startsWith('#!')) {
      skipped.push({ path: rel, reason: 'neither an ELF file nor a script' });
      continue;
    }
    const launcher = text.includes(LAUNCHER_MARKER);
    if (!launcher && !/\bmamba\b/.test(text)) {
      skipped.push({ path: rel, reason: 'a script that does not run mamba' });
      continue;
    }
    const interp = parseInterpreter(text);
    if (!launcher && !(interp && isPythonInterpreter(interp))) {
      skipped.push({ path: rel, reason: `a ${interp?.path ?? 'shell'} script, not a Python console script: what it runs is what gets patched` });
      continue;
    }
    const libmamba = findLibmamba(prefix);
    const rec = version('libmamba') ?? version('mamba');
    installs.push({
      kind: isMicro ? 'micromamba' : 'mamba1',
      entry: rel,
      format: 'script',
      static: false,
      arch: archOf(interp?.path) ?? archOf(libmamba[0] && path.join(prefix, libmamba[0])),
      libmamba,
      interpreter: interp?.path,
      versionFrom: rec?.record,
      failures: failuresFor(rec?.version, ['explicit-time-touch']),
      shimPresent: launcher ? 'launcher' : libmamba.some((l) => hasShimNeeded(path.join(prefix, l))) ? 'needed' : undefined,
    });
  }
  return { prefix, records, installs, skipped };
}

/** The first `len` bytes of a file (fewer when it is shorter): enough to tell an ELF file from a script. */
export function readHead(file: string, len = 4096): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(len);
    return buf.subarray(0, fs.readSync(fd, buf, 0, len, 0));
  } finally {
    fs.closeSync(fd);
  }
}

export function isElf(data: Uint8Array): boolean {
  return data.length >= 4 && data[0] === 0x7f && data[1] === 0x45 && data[2] === 0x4c && data[3] === 0x46;
}

export function isShimName(needed: string): boolean {
  return needed === SHIM_NAME || needed.endsWith(`/${SHIM_NAME}`);
}

function hasShimNeeded(file: string): boolean {
  try {
    return readElfFile(file, { symbols: false }).needed.some(isShimName);
  } catch {
    return false;
  }
}

/** The regular files lib/libmamba.so.N[.M...] (symlinks to them are not targets). */
export function findLibmamba(prefix: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(path.join(prefix, 'lib'));
  } catch {
    return [];
  }
  return names
    .filter((n) => /^libmamba\.so\.\d+(\.\d+)*$/.test(n))
    .filter((n) => fs.lstatSync(path.join(prefix, 'lib', n)).isFile())
    .sort()
    .map((n) => `lib/${n}`);
}

/** The architecture of an ELF file (following symlinks), or undefined. */
export function archOf(file: string | undefined): string | undefined {
  if (!file) return undefined;
  try {
    return isElf(readHead(file)) ? readElfFile(file, { symbols: false }).machine : undefined;
  } catch {
    return undefined;
  }
}

/** Node's name for the host architecture, in our naming. */
export function hostArch(): string {
  return ({ x64: 'x86_64', arm64: 'aarch64', ppc64: 'ppc64le', ia32: 'i386', arm: 'arm', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
}
