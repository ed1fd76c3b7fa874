/** Helpers shared by add and remove: raw dynamic slots, string lookups and symbol updates. */
import { ByteWriter } from './bytes.js';
import { DT, SHF, SHT } from './constants.js';
import { SYM_SIZE, SYM_VALUE_OFF, SymWords, dynString, dynValue, dynsymTable, liveEntries, stringOffsets, vaddrToOffset, type ElfFile, type Shdr } from './parse.js';
import type { Plan } from './plan.js';

export function encodeDyn(elf: ElfFile, tag: number, val: number): Uint8Array {
  const is64 = elf.header.bits === 64;
  const b = new Uint8Array(is64 ? 16 : 8);
  const w = new ByteWriter(b, elf.header.le, is64);
  w.setWord(0, tag);
  w.setWord(is64 ? 8 : 4, val);
  return b;
}

/** The raw bytes of every slot of PT_DYNAMIC. */
export function rawSlots(elf: ElfFile): Uint8Array[] {
  const d = elf.dynamic!;
  return d.slots.map((s) => elf.view.bytes(s.at, d.entsize));
}

/** Index of the DT_NEEDED entry naming `name`, or -1. */
export function neededIndex(elf: ElfFile, name: string): number {
  return liveEntries(elf).findIndex((e) => e.tag === DT.NEEDED && dynString(elf, e.val, 'DT_NEEDED') === name);
}

/** Where a new DT_NEEDED goes in a list of live entries: before the first (first) or after the last. */
export function insertPosition(elf: ElfFile, first: boolean, fallback: number): number {
  const live = liveEntries(elf);
  const idx = live.map((e, i) => (e.tag === DT.NEEDED ? i : -1)).filter((i) => i >= 0);
  if (idx.length === 0) return fallback;
  return first ? idx[0]! : fallback;
}

/** Writes the slots whose bytes differ from the original table. */
export function writeSlots(plan: Plan, elf: ElfFile, slots: Uint8Array[]): void {
  const d = elf.dynamic!;
  slots.forEach((bytes, i) => {
    const at = d.slots[i]!.at;
    if (!plan.orig.equals(at, bytes)) plan.put(at, bytes);
  });
}

/**
 * A string offset for `name` in DT_STRTAB that is safe to share: an exact string, or the tail of a symbol
 * name. Never inside RPATH, RUNPATH or SONAME (in-place rpath rewriters overwrite those).
 */
export function reusableString(elf: ElfFile, name: string): number | undefined {
  const t = elf.strtab;
  if (!t) return undefined;
  const v = elf.view;
  const needle = Buffer.from(name + '\0', 'utf8');
  // Search only the table: a miss must not scan the rest of a large file.
  const end = t.offset + t.size;
  const avoid = liveEntries(elf)
    .filter((e) => e.tag === DT.RPATH || e.tag === DT.RUNPATH || e.tag === DT.SONAME)
    .map((e) => {
      const s = Buffer.byteLength(dynString(elf, e.val, 'string'), 'utf8');
      return [e.val, e.val + s + 1] as const;
    });
  let symStarts: Set<number> | undefined;
  for (let i = v.indexOf(needle, t.offset, end); i >= 0; i = v.indexOf(needle, i + 1, end)) {
    const rel = i - t.offset;
    if (avoid.some(([a, b]) => rel < b && rel + needle.length > a)) continue;
    if (rel === 0 || v.u8(i - 1) === 0) return rel;
    let start = i;
    while (start > t.offset && v.u8(start - 1) !== 0) start--;
    symStarts ??= symbolNameStarts(elf);
    if (symStarts.has(start - t.offset)) return rel;
  }
  return undefined;
}

function symbolNameStarts(elf: ElfFile): Set<number> {
  const out = new Set<number>();
  const t = dynsymTable(elf);
  if (!t) return out;
  // st_name is every entry's first word.
  elf.view.scanWords(t.offset, t.count, t.entsize, (i, w, at) => i > 0 && out.add(w[at]!));
  return out;
}

/** Finds `.dynstr` (by the DT_STRTAB address) and `.dynamic` section headers, when present. */
export function dynSections(elf: ElfFile): { dynstr?: Shdr; dynamic?: Shdr } {
  const addr = elf.strtab?.addr;
  return {
    dynstr: elf.shdrs.find((s) => s.type === SHT.STRTAB && s.flags & SHF.ALLOC && s.addr === addr),
    dynamic: elf.shdrs.find((s) => s.type === SHT.DYNAMIC),
  };
}

/**
 * Points `_DYNAMIC` (in .dynsym and .symtab) at a new address and moves STT_SECTION symbols of moved
 * sections, so symbol tables agree with the headers.
 */
export function updateSymbols(plan: Plan, elf: ElfFile, dynamicAddr: number | undefined, sections: Map<number, number>): void {
  const v = elf.view;
  const is64 = elf.header.bits === 64;
  const valOff = SYM_VALUE_OFF(is64);
  const size = SYM_SIZE(is64);
  const visit = (tableOff: number, count: number, strOff: number, strEnd: number, sectionSyms: boolean): void => {
    const named = dynamicAddr === undefined ? new Set<number>() : stringOffsets(elf, strOff, strEnd - strOff, '_DYNAMIC');
    if (named.size === 0 && !sectionSyms) return;
    v.scanWords(tableOff, count, size, (i, w, at) => {
      if (i === 0) return;
      const info = SymWords.info(v, w, at);
      const shndx = SymWords.shndx(v, w, at);
      const symAt = tableOff + i * size;
      if (sectionSyms && (info & 0xf) === 3 && sections.has(shndx)) plan.putWord(symAt + valOff, sections.get(shndx)!);
      else if (dynamicAddr !== undefined && named.has(w[at]!)) plan.putWord(symAt + valOff, dynamicAddr);
    });
  };
  const dsym = dynsymTable(elf);
  if (dsym && elf.strtab) visit(dsym.offset, dsym.count, elf.strtab.offset, elf.strtab.offset + elf.strtab.size, false);
  for (const s of elf.shdrs) {
    if (s.type !== SHT.SYMTAB) continue;
    const strs = elf.shdrs[s.link];
    if (!strs || s.offset + s.size > v.size || strs.offset + strs.size > v.size) continue;
    visit(s.offset, Math.floor(s.size / size), strs.offset, strs.offset + strs.size, true);
  }
}

/**
 * The highest address a dynamic relocation reaches when its size is taken as its symbol's st_size
 * (`[r_offset, r_offset + st_size)`, as eu-elflint checks for text relocations): a GLOB_DAT or COPY to a
 * 4 MB object reaches 4 MB past its GOT slot. New segments go above it. 0 without relocations.
 */
const MAX_OBJECT = 1 << 28;
const reaches = new WeakMap<ElfFile, number>();
export function relocationReach(elf: ElfFile): number {
  let reach = reaches.get(elf);
  if (reach === undefined) reaches.set(elf, (reach = computeReach(elf)));
  return reach;
}

/**
 * Two sequential passes in blocks (libLLVM has 354,000 relocations and 45,000 symbols): every symbol's
 * size into a typed array (4 bytes per symbol, 0 for none or implausible), then the highest r_offset +
 * size over the relocation tables.
 */
function computeReach(elf: ElfFile): number {
  const v = elf.view;
  const is64 = elf.header.bits === 64;
  const syms = dynsymTable(elf);
  if (!syms || syms.count < 2) return 0;
  // Entries past the end of the file (a count estimated from DT_GNU_HASH) have no size.
  const symCount = Math.max(0, Math.min(syms.count, Math.floor((v.size - syms.offset) / syms.entsize)));
  const sizes = new Uint32Array(syms.count);
  v.scanWords(syms.offset, symCount, syms.entsize, (i, w, at) => {
    const size = SymWords.size(v, w, at);
    // Sizes beyond any real object are corruption, not a reason to place a segment gigabytes away.
    if (i > 0 && size <= MAX_OBJECT) sizes[i] = size;
  });
  // [address, size, RELA?, leading relative relocations (DT_RELACOUNT/DT_RELCOUNT: no symbol, skipped)]
  const tables: [number | undefined, number | undefined, boolean, number][] = [
    [dynValue(elf, DT.RELA), dynValue(elf, DT.RELASZ), true, dynValue(elf, DT.RELACOUNT) ?? 0],
    [dynValue(elf, DT.REL), dynValue(elf, DT.RELSZ), false, dynValue(elf, DT.RELCOUNT) ?? 0],
    [dynValue(elf, DT.JMPREL), dynValue(elf, DT.PLTRELSZ), dynValue(elf, DT.PLTREL) === DT.RELA, 0],
  ];
  // The word of r_info that holds the symbol index (ELF64: its high half; ELF32: info >> 8).
  const symWord = is64 ? (elf.header.le ? 3 : 2) : 1;
  let reach = 0;
  for (const [addr, size, rela, relative] of tables) {
    if (addr === undefined || !size) continue;
    const ent = (is64 ? 16 : 8) + (rela ? (is64 ? 8 : 4) : 0);
    const off = vaddrToOffset(elf, addr, size);
    if (off === undefined) continue;
    const count = Math.floor(size / ent);
    const skip = Math.min(relative, count);
    v.scanWords(off + skip * ent, count - skip, ent, (_, w, at) => {
      const sym = is64 ? w[at + symWord]! : w[at + symWord]! >>> 8;
      const objSize = sym < syms.count ? sizes[sym]! : 0;
      if (objSize !== 0) reach = Math.max(reach, (is64 ? v.pair(w, at) : w[at]!) + objSize);
    });
  }
  return reach;
}

