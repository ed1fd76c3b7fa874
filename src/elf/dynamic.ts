/** Helpers shared by add and remove: raw dynamic slots, string lookups and symbol updates. */
import { ByteWriter } from './bytes.js';
import { DT, SHF, SHT } from './constants.js';
import { SYM_SIZE, SYM_VALUE_OFF, dynString, dynValue, dynsymTable, liveEntries, stringOffsets, vaddrToOffset, type ElfFile, type Shdr } from './parse.js';
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
  const v = elf.view;
  for (let i = 1; i < t.count; i++) out.add(v.u32(t.offset + i * t.entsize));
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
    for (let i = 1; i < count; i++) {
      const at = tableOff + i * size;
      const info = v.u8(at + 4 + (is64 ? 0 : 8));
      const shndx = v.u16(at + (is64 ? 6 : 14));
      if (sectionSyms && (info & 0xf) === 3 && sections.has(shndx)) plan.putWord(at + valOff, sections.get(shndx)!);
      else if (dynamicAddr !== undefined && named.has(v.u32(at))) plan.putWord(at + valOff, dynamicAddr);
    }
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
export function relocationReach(elf: ElfFile): number {
  const v = elf.view;
  const is64 = elf.header.bits === 64;
  const le = elf.header.le;
  const syms = dynsymTable(elf);
  if (!syms) return 0;
  // [address, size, RELA?, leading relative relocations (DT_RELACOUNT/DT_RELCOUNT: no symbol, skipped)]
  const tables: [number | undefined, number | undefined, boolean, number][] = [
    [dynValue(elf, DT.RELA), dynValue(elf, DT.RELASZ), true, dynValue(elf, DT.RELACOUNT) ?? 0],
    [dynValue(elf, DT.REL), dynValue(elf, DT.RELSZ), false, dynValue(elf, DT.RELCOUNT) ?? 0],
    [dynValue(elf, DT.JMPREL), dynValue(elf, DT.PLTRELSZ), dynValue(elf, DT.PLTREL) === DT.RELA, 0],
  ];
  // The highest r_offset per symbol, reading the tables in blocks (hundreds of thousands of entries).
  const highest = new Map<number, number>();
  const buf = Buffer.alloc(1 << 16);
  for (const [addr, size, rela, relative] of tables) {
    if (addr === undefined || !size) continue;
    const ent = (is64 ? 16 : 8) + (rela ? (is64 ? 8 : 4) : 0);
    const off = vaddrToOffset(elf, addr, size);
    if (off === undefined) continue;
    const count = Math.floor(size / ent);
    const per = Math.floor(buf.length / ent);
    for (let first = Math.min(relative, count); first < count; first += per) {
      const n = Math.min(per, count - first);
      v.src.read(buf, n * ent, off + first * ent);
      // Fixed offsets per class and byte order: r_offset, and the word of r_info that holds the symbol.
      const symAt = is64 ? (le ? 12 : 8) : 4;
      for (let at = 0; at < n * ent; at += ent) {
        const info = le ? buf.readUInt32LE(at + symAt) : buf.readUInt32BE(at + symAt);
        const sym = is64 ? info : info >>> 8;
        if (sym === 0 || sym >= syms.count) continue;
        const rOff = is64
          ? (le ? buf.readUInt32LE(at + 4) : buf.readUInt32BE(at)) * 2 ** 32 + (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at + 4))
          : le ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
        if (rOff > (highest.get(sym) ?? -1)) highest.set(sym, rOff);
      }
    }
  }
  let reach = 0;
  for (const [sym, rOff] of highest) {
    const at = syms.offset + sym * syms.entsize + (is64 ? 16 : 8);
    const stSize = is64 ? v.u64Lossy(at) : v.u32(at);
    // Sizes beyond any real object are corruption, not a reason to place a segment gigabytes away.
    if (stSize > 0 && stSize <= MAX_OBJECT) reach = Math.max(reach, rOff + stSize);
  }
  return reach;
}
