/**
 * The raw structure of an ELF image: header, program headers, section headers and the dynamic table
 * found through PT_DYNAMIC. One class-independent view, built by switching on the class and byte order
 * once (modelled on Go's debug/elf). Every record keeps the file offset it was read from, so the editor
 * can patch it in place.
 */
import { ByteView, add, type Source } from './bytes.js';
import { DT, PT, SHT, machineName } from './constants.js';

export interface Header {
  bits: 32 | 64;
  le: boolean;
  type: number;
  machine: number;
  arch: string;
  entry: number;
  phoff: number;
  shoff: number;
  ehsize: number;
  phentsize: number;
  phnum: number;
  shentsize: number;
  shnum: number;
  shstrndx: number;
}

export interface Phdr {
  index: number;
  /** File offset of this entry in the program-header table. */
  at: number;
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  paddr: number;
  filesz: number;
  memsz: number;
  align: number;
}

export interface Shdr {
  index: number;
  at: number;
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
  info: number;
  addralign: number;
  entsize: number;
}

export interface DynEntry {
  index: number;
  at: number;
  tag: number;
  val: number;
}

export interface Dynamic {
  phdr: Phdr;
  entsize: number;
  /** Every slot inside PT_DYNAMIC's file size, including the terminator and spares. */
  slots: DynEntry[];
  /** Index of the first DT_NULL (the terminator), or -1 when the table has none. */
  terminator: number;
}

export interface StrTab {
  addr: number;
  offset: number;
  size: number;
}

export interface ElfFile {
  view: ByteView;
  header: Header;
  phdrs: Phdr[];
  shdrs: Shdr[];
  dynamic?: Dynamic;
  strtab?: StrTab;
}

const MAGIC = [0x7f, 0x45, 0x4c, 0x46];

/** Parses an image in memory or behind a Source (a file read with positional reads: headers and tables only). */
export function parseElf(data: Uint8Array | Source, file?: string): ElfFile {
  const probe = new ByteView(data, true, true, file);
  const id = probe.size >= 16 ? probe.bytes(0, 16) : new Uint8Array(0);
  if (id.length < 16 || MAGIC.some((b, i) => id[i] !== b)) probe.fail('not an ELF file (bad magic)');
  const cls = id[4];
  const enc = id[5];
  if (cls !== 1 && cls !== 2) probe.fail(`unknown ELF class ${cls} at offset 4`);
  if (enc !== 1 && enc !== 2) probe.fail(`unknown ELF data encoding ${enc} at offset 5`);
  if (id[6] !== 1) probe.fail(`unknown ELF version ${id[6]} at offset 6`);
  const is64 = cls === 2;
  const view = new ByteView(probe.src, enc === 1, is64, file);
  const header = readHeader(view);
  const phdrs = readPhdrs(view, header);
  const shdrs = readShdrs(view, header);
  const elf: ElfFile = { view, header, phdrs, shdrs };
  readDynamic(elf);
  return elf;
}

function readHeader(v: ByteView): Header {
  const is64 = v.is64;
  v.check(0, is64 ? 64 : 52, 'ELF header');
  const w = v.wordSize;
  const o = 24; // e_entry
  const header: Header = {
    bits: is64 ? 64 : 32,
    le: v.le,
    type: v.u16(16),
    machine: v.u16(18),
    arch: '',
    entry: v.wordLossy(o),
    phoff: v.word(o + w),
    shoff: v.word(o + 2 * w),
    ehsize: v.u16(o + 3 * w + 4),
    phentsize: v.u16(o + 3 * w + 6),
    phnum: v.u16(o + 3 * w + 8),
    shentsize: v.u16(o + 3 * w + 10),
    shnum: v.u16(o + 3 * w + 12),
    shstrndx: v.u16(o + 3 * w + 14),
  };
  header.arch = machineName(header.machine, v.le, header.bits);
  return header;
}

export const PHDR_SIZE = (is64: boolean): number => (is64 ? 56 : 32);
export const SHDR_SIZE = (is64: boolean): number => (is64 ? 64 : 40);
export const SYM_SIZE = (is64: boolean): number => (is64 ? 24 : 16);
export const DYN_SIZE = (is64: boolean): number => (is64 ? 16 : 8);

function readPhdrs(v: ByteView, h: Header): Phdr[] {
  if (h.phnum === 0) return [];
  if (h.phentsize !== PHDR_SIZE(v.is64)) v.fail(`program header entry size ${h.phentsize} (offset ${v.is64 ? 54 : 42}) is not ${PHDR_SIZE(v.is64)}`);
  v.check(h.phoff, h.phnum * h.phentsize, 'program header table');
  const out: Phdr[] = [];
  for (let i = 0; i < h.phnum; i++) {
    const at = h.phoff + i * h.phentsize;
    const p: Phdr = v.is64
      ? {
          index: i, at, type: v.u32(at), flags: v.u32(at + 4), offset: v.u64(at + 8), vaddr: v.u64Lossy(at + 16),
          paddr: v.u64Lossy(at + 24), filesz: v.u64(at + 32), memsz: v.u64(at + 40), align: v.u64Lossy(at + 48),
        }
      : {
          index: i, at, type: v.u32(at), offset: v.u32(at + 4), vaddr: v.u32(at + 8), paddr: v.u32(at + 12),
          filesz: v.u32(at + 16), memsz: v.u32(at + 20), flags: v.u32(at + 24), align: v.u32(at + 28),
        };
    out.push(p);
  }
  return out;
}

function readShdrs(v: ByteView, h: Header): Shdr[] {
  if (h.shoff === 0) return [];
  const size = SHDR_SIZE(v.is64);
  if (h.shentsize !== size) v.fail(`section header entry size ${h.shentsize} is not ${size}`);
  v.check(h.shoff, size, 'section header table');
  let shnum = h.shnum;
  let shstrndx = h.shstrndx;
  // Extended numbering: the real counts live in section header 0.
  if (shnum === 0) shnum = v.is64 ? v.u64(h.shoff + 32) : v.u32(h.shoff + 20);
  if (shstrndx === 0xffff) shstrndx = v.u32(h.shoff + (v.is64 ? 40 : 24));
  if (shnum === 0) return [];
  if (shnum > v.size / size) v.fail(`section header count ${shnum} cannot fit in the file`);
  v.check(h.shoff, shnum * size, 'section header table');
  const out: Shdr[] = [];
  const nameOffs: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const at = h.shoff + i * size;
    nameOffs.push(v.u32(at));
    out.push(
      v.is64
        ? {
            index: i, at, name: '', type: v.u32(at + 4), flags: v.u64Lossy(at + 8), addr: v.u64Lossy(at + 16),
            offset: v.u64Lossy(at + 24), size: v.u64Lossy(at + 32), link: v.u32(at + 40), info: v.u32(at + 44),
            addralign: v.u64Lossy(at + 48), entsize: v.u64Lossy(at + 56),
          }
        : {
            index: i, at, name: '', type: v.u32(at + 4), flags: v.u32(at + 8), addr: v.u32(at + 12), offset: v.u32(at + 16),
            size: v.u32(at + 20), link: v.u32(at + 24), info: v.u32(at + 28), addralign: v.u32(at + 32), entsize: v.u32(at + 36),
          },
    );
  }
  // Section names are a convenience (messages, the verifier); a broken name table leaves them empty.
  const strs = out[shstrndx];
  if (strs && strs.type === SHT.STRTAB && strs.offset + strs.size <= v.size) {
    out.forEach((s, i) => {
      const off = nameOffs[i]!;
      const end = off < strs.size ? v.indexOf(0, strs.offset + off, strs.offset + strs.size) : -1;
      if (end >= 0) s.name = v.cstr(strs.offset + off, strs.offset + strs.size, 'section name');
    });
  }
  return out;
}

export const loads = (elf: ElfFile): Phdr[] => elf.phdrs.filter((p) => p.type === PT.LOAD);

/** The file offset of [vaddr, vaddr+len) if one PT_LOAD maps all of it from the file, else undefined. */
export function vaddrToOffset(elf: ElfFile, vaddr: number, len = 1): number | undefined {
  for (const p of elf.phdrs) {
    if (p.type !== PT.LOAD) continue;
    if (vaddr >= p.vaddr && vaddr + len <= p.vaddr + p.filesz) {
      const off = p.offset + (vaddr - p.vaddr);
      if (off + len <= elf.view.size) return off;
    }
  }
  return undefined;
}

function readDynamic(elf: ElfFile): void {
  const v: ByteView = elf.view;
  const dyn = elf.phdrs.find((p) => p.type === PT.DYNAMIC);
  if (!dyn) return;
  const entsize = DYN_SIZE(v.is64);
  const slots: DynEntry[] = [];
  let terminator = -1;
  if (dyn.filesz > 0) {
    v.check(dyn.offset, dyn.filesz, 'PT_DYNAMIC');
    const n = Math.floor(dyn.filesz / entsize);
    for (let i = 0; i < n; i++) {
      const at = dyn.offset + i * entsize;
      const tag = v.is64 ? v.u64Lossy(at) : v.u32(at);
      const val = v.wordLossy(at + v.wordSize);
      slots.push({ index: i, at, tag, val });
      if (tag === DT.NULL && terminator < 0) terminator = i;
    }
  }
  elf.dynamic = { phdr: dyn, entsize, slots, terminator };
  const live = liveEntries(elf);
  const strtab = live.find((e) => e.tag === DT.STRTAB);
  const strsz = live.find((e) => e.tag === DT.STRSZ);
  if (strtab && strsz) {
    const off = vaddrToOffset(elf, strtab.val, Math.max(1, strsz.val));
    if (off === undefined) v.fail(`DT_STRTAB 0x${strtab.val.toString(16)} (size ${strsz.val}) is not mapped from the file by any PT_LOAD`);
    elf.strtab = { addr: strtab.val, offset: off, size: strsz.val };
  }
}

/** The dynamic entries before the terminator. */
export function liveEntries(elf: ElfFile): DynEntry[] {
  const d = elf.dynamic;
  if (!d) return [];
  return d.terminator < 0 ? d.slots : d.slots.slice(0, d.terminator);
}

export function dynValue(elf: ElfFile, tag: number): number | undefined {
  return liveEntries(elf).find((e) => e.tag === tag)?.val;
}

/** A string from DT_STRTAB at a table offset. */
export function dynString(elf: ElfFile, off: number, what: string): string {
  const t = elf.strtab;
  if (!t) elf.view.fail(`${what} refers to a string but the file has no DT_STRTAB/DT_STRSZ`);
  if (off >= t.size) elf.view.fail(`${what} string offset ${off} is beyond DT_STRSZ ${t.size}`);
  return elf.view.cstr(t.offset + off, t.offset + t.size, what);
}

/** The dynamic symbol table: location and entry count (from DT_HASH, DT_GNU_HASH or the section). */
export function dynsymTable(elf: ElfFile): { offset: number; count: number; entsize: number; addr: number } | undefined {
  const v: ByteView = elf.view;
  const addr = dynValue(elf, DT.SYMTAB);
  if (addr === undefined) return undefined;
  const entsize = dynValue(elf, DT.SYMENT) ?? SYM_SIZE(v.is64);
  if (entsize !== SYM_SIZE(v.is64)) v.fail(`DT_SYMENT ${entsize} is not ${SYM_SIZE(v.is64)}`);
  let count: number | undefined;
  const hash = dynValue(elf, DT.HASH);
  const gnu = dynValue(elf, DT.GNU_HASH);
  const sec = elf.shdrs.find((s) => s.type === SHT.DYNSYM && s.addr === addr);
  if (sec) {
    count = Math.floor(sec.size / entsize);
  } else if (hash !== undefined) {
    const off = vaddrToOffset(elf, hash, 8);
    if (off === undefined) v.fail(`DT_HASH 0x${hash.toString(16)} is not mapped from the file`);
    count = v.u32(off + 4);
  } else if (gnu !== undefined) {
    // DT_GNU_HASH covers only defined symbols; undefined ones may follow. Linkers put .dynstr right
    // after .dynsym, so the gap to DT_STRTAB bounds the table when it is plausible.
    count = gnuHashCount(elf, gnu);
    const str = elf.strtab?.addr;
    if (str !== undefined && str > addr) {
      const gap = Math.floor((str - addr) / entsize);
      const base = gap <= v.size / entsize ? vaddrToOffset(elf, addr, gap * entsize) : undefined;
      // Stop at the first entry that cannot be a symbol (something else sits between the tables).
      if (base !== undefined) {
        while (count < gap && v.u32(base + count * entsize) < (elf.strtab?.size ?? 0)) count++;
      }
    }
  }
  if (count === undefined) return undefined;
  const offset = vaddrToOffset(elf, addr, Math.max(1, count * entsize));
  if (offset === undefined) v.fail(`DT_SYMTAB 0x${addr.toString(16)} with ${count} symbols is not mapped from the file`);
  return { offset, count, entsize, addr };
}

function gnuHashCount(elf: ElfFile, addr: number): number {
  const v: ByteView = elf.view;
  const off = vaddrToOffset(elf, addr, 16);
  if (off === undefined) v.fail(`DT_GNU_HASH 0x${addr.toString(16)} is not mapped from the file`);
  const nbuckets = v.u32(off);
  const symoffset = v.u32(off + 4);
  const bloomSize = v.u32(off + 8);
  const buckets = add(off + 16, bloomSize * v.wordSize, v, 'DT_GNU_HASH bloom filter');
  v.check(buckets, nbuckets * 4, 'DT_GNU_HASH buckets');
  let max = 0;
  for (let i = 0; i < nbuckets; i++) max = Math.max(max, v.u32(buckets + i * 4));
  if (max < symoffset) return symoffset;
  const chain = buckets + nbuckets * 4;
  let idx = max;
  for (;;) {
    const c = v.u32(chain + (idx - symoffset) * 4); // bounds-checked: a hostile chain ends at the file end
    if (c & 1) return idx + 1;
    idx++;
  }
}

/**
 * The fields of a symbol entry as ByteView.scanWords hands it over (`at`: the entry's first word, st_name),
 * without a record per entry. ELF64: name, info|other|shndx, value (a word pair), size (a pair); ELF32: name,
 * value, size, info|other|shndx. st_info, st_other and st_shndx share one word, in the file's byte order.
 */
export const SymWords = {
  info(v: ByteView, w: Uint32Array, at: number): number {
    const x = w[at + (v.is64 ? 1 : 3)]!;
    return v.le ? x & 0xff : x >>> 24;
  },
  shndx(v: ByteView, w: Uint32Array, at: number): number {
    const x = w[at + (v.is64 ? 1 : 3)]!;
    return v.le ? x >>> 16 : x & 0xffff;
  },
  value(v: ByteView, w: Uint32Array, at: number): number {
    return v.is64 ? v.pair(w, at + 2) : w[at + 1]!;
  },
  size(v: ByteView, w: Uint32Array, at: number): number {
    return v.is64 ? v.pair(w, at + 4) : w[at + 2]!;
  },
};

/**
 * Every offset, relative to a string table at [tableOff, tableOff+size), where `name` (NUL-terminated)
 * starts, tails of longer strings included: symbol names are then matched by offset, reading the table
 * once in order instead of at random (a large table would thrash the read cache).
 */
export function stringOffsets(elf: ElfFile, tableOff: number, size: number, name: string): Set<number> {
  const out = new Set<number>();
  const needle = Buffer.from(name + '\0', 'utf8');
  const end = Math.min(tableOff + size, elf.view.size);
  for (let i = elf.view.indexOf(needle, tableOff, end); i >= 0; i = elf.view.indexOf(needle, i + 1, end)) out.add(i - tableOff);
  return out;
}

/** Offset of st_value inside a symbol entry. */
export const SYM_VALUE_OFF = (is64: boolean): number => (is64 ? 8 : 4);

export interface VersionNeed {
  file: string;
  fileOff: number;
  versions: { name: string; nameOff: number }[];
}

export function versionNeeds(elf: ElfFile): VersionNeed[] {
  const v: ByteView = elf.view;
  const addr = dynValue(elf, DT.VERNEED);
  const num = dynValue(elf, DT.VERNEEDNUM) ?? 0;
  if (addr === undefined || num === 0) return [];
  let off = vaddrToOffset(elf, addr, 16);
  if (off === undefined) v.fail(`DT_VERNEED 0x${addr.toString(16)} is not mapped from the file`);
  const out: VersionNeed[] = [];
  const cap = Math.floor(v.size / 16);
  for (let i = 0; i < num && i < cap; i++) {
    const cnt = v.u16(off + 2);
    const fileOff = v.u32(off + 4);
    const aux = v.u32(off + 8);
    const next = v.u32(off + 12);
    const need: VersionNeed = { file: dynString(elf, fileOff, 'verneed file'), fileOff, versions: [] };
    let a = add(off, aux, v, 'vn_aux');
    for (let j = 0; j < cnt && j < cap; j++) {
      const nameOff = v.u32(a + 8);
      need.versions.push({ name: dynString(elf, nameOff, 'verneed version'), nameOff });
      const an = v.u32(a + 12);
      if (an === 0) break;
      a = add(a, an, v, 'vna_next');
    }
    out.push(need);
    if (next === 0) break;
    off = add(off, next, v, 'vn_next');
  }
  return out;
}
