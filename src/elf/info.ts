/** What `mambapatch elf info` shows: a summary of an ELF file read through PT_DYNAMIC. */
import { withFileSource } from './bytes.js';
import { cannotRead } from '../errors.js';
import { guarded } from './guard.js';
import { DF_1_PIE, DF_STATIC_TLS, DT, EDITABLE_ARCHES, ET, PT, SHT } from './constants.js';
import { findEntryHook } from './hook-header.js';
import { SymWords, dynString, dynValue, dynsymTable, liveEntries, parseElf, versionNeeds, type ElfFile } from './parse.js';

export type ElfType = 'NONE' | 'REL' | 'EXEC' | 'DYN' | 'CORE' | 'OTHER';

export interface ElfInfo {
  bits: 32 | 64;
  endian: 'little' | 'big';
  type: ElfType;
  /** executable (non-PIE), pie, library, static-pie, static, object, other */
  kind: string;
  machine: string;
  machineNumber: number;
  interpreter?: string;
  isDynamic: boolean;
  isStatic: boolean;
  soname?: string;
  needed: string[];
  rpath?: string;
  runpath?: string;
  importedSymbols: string[];
  versionNeeds: { file: string; versions: string[] }[];
  glibcMax?: string;
  staticTls: boolean;
  hasSectionHeaders: boolean;
  /** Spare DT_NULL slots after the terminator (what a tier-A edit consumes). */
  spareDynamicSlots: number;
  editable: boolean;
  /** Why the engine refuses to edit this file (when editable is false). */
  refusal?: string;
  /** The mambapatch entry hook e_entry leads through (`elf add-entry-hook`), if any. */
  entryHook?: { id: string; version?: string; arch?: string; address: number; originalEntry: number };
}

const TYPES: Record<number, ElfType> = { [ET.NONE]: 'NONE', [ET.REL]: 'REL', [ET.EXEC]: 'EXEC', [ET.DYN]: 'DYN', [ET.CORE]: 'CORE' };

export function readElf(data: Uint8Array, file?: string): ElfInfo {
  return guarded(file, 'cannot read', () => describe(parseElf(data, file)));
}

/**
 * readElf on a file through positional reads of its headers and the tables it uses: memory and time do
 * not grow with the file's size. `symbols: false` skips the imported-symbol list.
 */
export function readElfFile(path: string, opts: { symbols?: boolean } = {}): ElfInfo {
  try {
    return withFileSource(path, (src) => guarded(path, 'cannot read', () => describe(parseElf(src, path), opts)));
  } catch (e) {
    return cannotRead(e, path);
  }
}

/** The summary of a parsed file; `symbols: false` skips the imported-symbol list (the editor's checks). */
export function describe(elf: ElfFile, opts: { symbols?: boolean } = {}): ElfInfo {
  const h = elf.header;
  const interp = elf.phdrs.find((p) => p.type === PT.INTERP);
  let interpreter: string | undefined;
  if (interp && interp.filesz > 0) {
    elf.view.check(interp.offset, interp.filesz, 'PT_INTERP');
    interpreter = elf.view.cstr(interp.offset, interp.offset + interp.filesz, 'PT_INTERP');
  }
  const live = liveEntries(elf);
  const str = (tag: number, what: string): string | undefined => {
    const e = live.find((x) => x.tag === tag);
    return e ? dynString(elf, e.val, what) : undefined;
  };
  const needed = live.filter((e) => e.tag === DT.NEEDED).map((e) => dynString(elf, e.val, 'DT_NEEDED'));
  const vneeds = versionNeeds(elf);
  const glibc = vneeds.flatMap((n) => n.versions.map((x) => x.name)).filter((n) => /^GLIBC_\d+(\.\d+)*$/.test(n));
  const isDynamic = elf.dynamic !== undefined && elf.dynamic.phdr.filesz > 0;
  const flags1 = dynValue(elf, DT.FLAGS_1) ?? 0;
  const info: ElfInfo = {
    bits: h.bits,
    endian: h.le ? 'little' : 'big',
    type: TYPES[h.type] ?? 'OTHER',
    kind: '',
    machine: h.arch,
    machineNumber: h.machine,
    interpreter,
    isDynamic,
    isStatic: !elf.dynamic,
    soname: str(DT.SONAME, 'DT_SONAME'),
    needed,
    rpath: str(DT.RPATH, 'DT_RPATH'),
    runpath: str(DT.RUNPATH, 'DT_RUNPATH'),
    importedSymbols: opts.symbols === false ? [] : importedSymbols(elf),
    versionNeeds: vneeds.map((n) => ({ file: n.file, versions: n.versions.map((x) => x.name) })),
    glibcMax: glibc.sort(compareVersions).at(-1)?.slice(6),
    staticTls: ((dynValue(elf, DT.FLAGS) ?? 0) & DF_STATIC_TLS) !== 0,
    hasSectionHeaders: elf.shdrs.length > 0,
    spareDynamicSlots: spareSlots(elf),
    editable: false,
  };
  info.kind =
    h.type === ET.REL ? 'object'
    : h.type === ET.EXEC ? (isDynamic ? 'executable' : 'static')
    : h.type !== ET.DYN ? 'other'
    : !isDynamic ? 'static'
    : interpreter ? 'pie'
    : flags1 & DF_1_PIE ? 'static-pie'
    : 'library';
  const hook = findEntryHook(elf);
  if (hook) info.entryHook = { id: hook.header.id, version: hook.header.version, arch: hook.header.arch, address: hook.vaddr, originalEntry: hook.originalEntry };
  info.refusal = refusal(elf, info);
  info.editable = info.refusal === undefined;
  return info;
}

function spareSlots(elf: ElfFile): number {
  const d = elf.dynamic;
  if (!d || d.terminator < 0) return 0;
  let n = 0;
  for (let i = d.terminator + 1; i < d.slots.length && d.slots[i]!.tag === DT.NULL; i++) n++;
  return n;
}

function importedSymbols(elf: ElfFile): string[] {
  const t = dynsymTable(elf);
  if (!t || !elf.strtab) return [];
  const out = new Set<string>();
  // Undefined symbols (st_shndx 0) with a name.
  elf.view.scanWords(t.offset, t.count, t.entsize, (i, w, at) => {
    if (i > 0 && SymWords.shndx(elf.view, w, at) === 0 && w[at]! !== 0) out.add(dynString(elf, w[at]!, `symbol ${i} name`));
  });
  return [...out];
}

export function compareVersions(a: string, b: string): number {
  const pa = a.replace(/^\D+/, '').split('.').map(Number);
  const pb = b.replace(/^\D+/, '').split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

const LOADER_SONAME = /^(ld-linux[^/]*\.so(\.\d+)*|ld64\.so(\.\d+)*|ld\.so(\.\d+)*|ld-musl-[^/]*\.so(\.\d+)*)$/;

/** Why the engine will not edit this file, or undefined when it may. */
function refusal(elf: ElfFile, info: ElfInfo): string | undefined {
  const h = elf.header;
  if (h.type === ET.REL) return 'is a relocatable object (ET_REL), not a linked executable or library';
  if (h.type !== ET.EXEC && h.type !== ET.DYN) return `has ELF type ${h.type}, not an executable or shared library`;
  if (!elf.dynamic) return 'is statically linked (no PT_DYNAMIC); a static file cannot load a library';
  if (elf.dynamic.phdr.filesz === 0) return 'has an empty PT_DYNAMIC (a separate debug-info file?)';
  if (h.machine === 8) return 'is a MIPS file; MIPS is not supported for editing';
  if (!EDITABLE_ARCHES.includes(h.arch) || h.bits !== 64) {
    return `is for ${h.arch} (${h.bits}-bit ${info.endian}-endian); only x86_64, aarch64 and ppc64le files can be edited`;
  }
  if (!info.interpreter) {
    if (info.soname && LOADER_SONAME.test(info.soname)) return `is the dynamic loader itself (${info.soname}); it relocates itself and cannot load a library`;
    if (info.kind === 'static-pie') return 'is a static-pie executable; it relocates itself and cannot load a library';
    if (info.soname === 'libc.so' && info.needed.length === 0) return 'is musl libc, which is also the dynamic loader';
    if (info.needed.length === 0 && h.entry !== 0 && !info.soname) return 'is a self-relocating executable without an interpreter (static-pie?)';
  }
  const loads = elf.phdrs.filter((p) => p.type === PT.LOAD);
  for (const [i, p] of loads.entries()) {
    if (p.filesz > p.memsz) return `has an inconsistent PT_LOAD (program header ${p.index}: file size above memory size)`;
    if (p.offset + p.filesz > elf.view.size) return `is truncated or inconsistent (PT_LOAD ${p.index} ends past the end of the file)`;
    const prev = loads[i - 1];
    if (prev && p.vaddr < prev.vaddr + prev.memsz) return `has overlapping or unsorted PT_LOAD segments (program header ${p.index})`;
  }
  if (!elf.strtab) return 'has no DT_STRTAB/DT_STRSZ in its dynamic table';
  if (elf.dynamic.terminator < 0 && elf.dynamic.slots.length === 0) return 'has an empty dynamic table';
  if (elf.shdrs.some((s) => s.type === SHT.DYNAMIC) && !elf.shdrs.some((s) => s.type === SHT.DYNAMIC && s.offset === elf.dynamic!.phdr.offset)) {
    return 'has a .dynamic section that disagrees with PT_DYNAMIC';
  }
  return undefined;
}
