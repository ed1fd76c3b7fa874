/**
 * Where relocated tables go, first fit: a cave after a non-writable PT_LOAD, the end of the last
 * writable PT_LOAD (shifting only the non-alloc tail), or a new PT_LOAD whose program-header slot is a
 * PT_NULL entry, unclaimed bytes after the table, or a moved table. Program headers are kept as a mutable
 * model and written once at the end (in place, or into the new segment when the table moves).
 */
import { ByteWriter, alignDown, alignUp, isPow2 } from './bytes.js';
import { PF, PT, SHF, SHT, maxPageSize } from './constants.js';
import { relocationReach } from './dynamic.js';
import type { Phdr, Shdr } from './parse.js';
import type { Plan, Range } from './plan.js';

export interface Region {
  /** Final file offset. */
  off: number;
  vaddr: number;
  /** True when the region is inside the original bytes (a cave): write with plan.put. */
  inPlace: boolean;
  how: 'cave' | 'extend' | 'new-load' | 'gap';
}

export type PhtSlot = 'null' | 'grow' | 'cave' | 'gap' | 'move';

export class Layout {
  readonly phdrs: Phdr[];
  readonly pageSize: number;
  /** Set when a new PT_LOAD is added. */
  newLoad?: { phdr: Phdr; slot: PhtSlot; index: number };
  /** Where the program-header table went when it moved (final file offset). */
  phtMovedTo?: Region;

  /** `executable`: treat the file as an executable whatever its type (a static-pie the kernel starts). */
  constructor(
    readonly plan: Plan,
    private readonly executable = false,
  ) {
    this.phdrs = plan.elf.phdrs.map((p) => ({ ...p }));
    this.pageSize = maxPageSize(plan.elf.header.arch);
  }

  get elf() {
    return this.plan.elf;
  }
  loads(): Phdr[] {
    return this.phdrs.filter((p) => p.type === PT.LOAD);
  }

  /** Byte ranges something points at: headers, segments, sections. */
  claims(opts: { skipLoads?: boolean } = {}): Range[] {
    const { header: h, shdrs } = this.elf;
    const out: Range[] = [{ off: 0, len: h.ehsize }, { off: h.phoff, len: h.phnum * h.phentsize }];
    if (h.shoff) out.push({ off: h.shoff, len: shdrs.length * h.shentsize });
    for (const p of this.elf.phdrs) {
      if (p.type === PT.NULL || p.filesz === 0) continue;
      if (opts.skipLoads && (p.type === PT.LOAD || p.type === PT.PHDR)) continue;
      out.push({ off: p.offset, len: p.filesz });
    }
    for (const s of shdrs) if (s.type !== SHT.NULL && s.type !== SHT.NOBITS && s.size > 0) out.push({ off: s.offset, len: s.size });
    return out;
  }

  private free(start: number, end: number, claims: Range[]): boolean {
    return !claims.some((c) => c.off < end && c.off + c.len > start);
  }

  /**
   * Zero padding after a read-only PT_LOAD (filesz = memsz) that can hold `len` bytes at `align` without
   * growing the file or reaching the next PT_LOAD's first page; with `base`, only in a LOAD whose
   * vaddr - offset is that image base (where old kernels look for the program headers).
   */
  private findCave(len: number, opts: { align?: number; base?: number } = {}): { p: Phdr; start: number } | undefined {
    const data = this.plan.orig;
    const loads = this.loads();
    const cands = loads
      .filter((p) => !(p.flags & PF.W) && p.filesz === p.memsz && (opts.base === undefined || p.vaddr - p.offset === opts.base))
      .sort((a, b) => (a.flags & PF.X) - (b.flags & PF.X));
    const claims = this.claims();
    for (const p of cands) {
      const start = alignUp(p.offset + p.filesz, opts.align ?? 1);
      const end = start + len;
      if (end > data.size) continue;
      const next = loads.filter((q) => q.vaddr > p.vaddr).sort((a, b) => a.vaddr - b.vaddr)[0];
      if (next && p.vaddr + (end - p.offset) > alignDown(next.vaddr, this.pageSize)) continue;
      if (!this.free(p.offset + p.filesz, end, claims)) continue;
      if (!data.isZero(p.offset + p.filesz, end)) continue;
      return { p, start };
    }
    return undefined;
  }

  /** Claims a cave (see findCave): the LOAD grows over it. */
  cave(len: number, opts: { align?: number; base?: number } = {}): Region | undefined {
    const c = this.findCave(len, opts);
    if (!c) return undefined;
    const { p, start } = c;
    p.filesz = p.memsz = start + len - p.offset;
    return { off: start, vaddr: p.vaddr + (start - p.offset), inPlace: true, how: 'cave' };
  }

  /**
   * The end of the loaded file data and what follows it: only non-alloc sections and the section-header
   * table may sit there (they shift; only sh_offset and e_shoff change). Undefined when anything else does.
   */
  private tail(): { at: number; shifted: Shdr[]; align: number } | undefined {
    const { plan, elf } = this;
    if (plan.insert) return undefined;
    const loads = elf.phdrs.filter((p) => p.type === PT.LOAD);
    if (loads.length === 0) return undefined;
    const at = Math.max(...loads.map((p) => p.offset + p.filesz));
    if (at > plan.orig.size) return undefined;
    for (const p of elf.phdrs) {
      if (p.type !== PT.LOAD && p.type !== PT.NULL && p.filesz > 0 && p.offset + p.filesz > at) return undefined;
    }
    let align = 16;
    const shifted: Shdr[] = [];
    for (const s of elf.shdrs) {
      if (s.type === SHT.NULL) continue;
      const end = s.offset + (s.type === SHT.NOBITS ? 0 : s.size);
      if (s.flags & SHF.ALLOC) {
        if (s.type !== SHT.NOBITS && end > at) return undefined;
      } else if (s.offset >= at) {
        shifted.push(s);
        align = Math.max(align, Math.min(s.addralign, 4096));
      } else if (end > at) {
        return undefined;
      }
    }
    return { at, shifted, align };
  }

  /** Inserts `len` bytes (rounded up to keep the tail aligned) at the tail; returns the inserted length. */
  private shiftTail(t: { at: number; shifted: Shdr[]; align: number }, len: number): number {
    const { plan, elf } = this;
    const insertLen = alignUp(len, t.align);
    plan.insert = { at: t.at, len: insertLen };
    for (const s of t.shifted) plan.putShdrPlacement(s, { offset: s.offset + insertLen });
    if (elf.header.shoff >= t.at) plan.putWord(elf.header.bits === 64 ? 40 : 32, elf.header.shoff + insertLen);
    return insertLen;
  }

  /** Grows the last PT_LOAD when it is writable with a small .bss: the .bss becomes file bytes. */
  extendLastWritable(len: number, maxBss = 0x10000): Region | undefined {
    const loads = this.loads();
    const t = this.tail();
    if (!t || loads.length === 0) return undefined;
    const last = loads.reduce((a, b) => (b.vaddr > a.vaddr ? b : a));
    if (!(last.flags & PF.W) || last.offset + last.filesz !== t.at) return undefined;
    if (last.memsz - last.filesz > maxBss) return undefined;
    const v0 = alignUp(last.vaddr + last.memsz, 16);
    const pre = v0 - last.vaddr - last.filesz;
    this.shiftTail(t, pre + len);
    last.filesz = last.memsz = v0 + len - last.vaddr;
    return { off: t.at + pre, vaddr: v0, inPlace: false, how: 'extend' };
  }

  /**
   * Adds a PT_LOAD after the loaded data holding `len` bytes (after the moved program-header table when
   * there is no slot for one more entry). Returns the region for the caller's bytes.
   */
  addLoad(len: number, flags: number): Region | { refused: string } {
    const { plan, elf } = this;
    const h = elf.header;
    const es = h.phentsize;
    if (h.phnum + 2 >= 0xffff) return { refused: 'too many program headers' };
    const { slot, index } = this.phtSlot();
    const A = Math.max(this.pageSize, ...this.loads().map((p) => p.align));
    if (!isPow2(A) || A > 1 << 28) return { refused: `implausible segment alignment 0x${A.toString(16)}` };
    // glibc finds a library's table through PT_PHDR, else in the first LOAD whose pages hold e_phoff: a
    // moved table sharing a page with the end of an earlier LOAD would be read from that LOAD's mapping,
    // zero past its file bytes (dl_iterate_phdr, unwinding and TLS would see no headers). A library whose
    // table moves gets a PT_PHDR, first in the new table.
    const addPhdr = slot === 'move' && !this.isExecutable && !this.phdrs.some((p) => p.type === PT.PHDR);
    const phnum = h.phnum + 1 + (addPhdr ? 1 : 0);
    const phtLen = phnum * es;
    // An executable's table moves into padding (or an opened page) of a LOAD at the image base; a
    // library's to the head of the new segment.
    const phtCave =
      slot === 'cave' ? this.cave(phtLen, { align: 8, base: this.phtBase() })
      : slot === 'gap' ? this.openGap(phtLen, A)
      : undefined;
    if ((slot === 'cave' || slot === 'gap') && !phtCave) return { refused: 'no room for the program-header table' };
    const inSegment = slot === 'move' ? alignUp(phtLen, 16) : 0;
    const total = inSegment + len;
    // Above every segment, and above what any dynamic relocation reaches with its symbol's size (a
    // GLOB_DAT to a 4 MB object near the end must not seem to write into the new, read-only segment).
    const maxEnd = Math.max(...this.loads().map((p) => p.vaddr + p.memsz), relocationReach(elf));
    // Before the non-alloc tail when it can shift (strip tools rewrite what lies after the sections),
    // else appended to the file.
    const t = this.tail();
    const fileEnd = t ? t.at : plan.shiftedSize;
    let off: number;
    let vaddr: number;
    if (slot === 'move' && this.isExecutable) {
      // Old kernels and qemu-user compute AT_PHDR as first-LOAD base + e_phoff: keep vaddr - offset = base.
      const base = this.phtBase()!;
      if (base % A !== 0) return { refused: 'cannot move the program-header table of an executable whose image base is not page aligned' };
      off = Math.max(alignUp(fileEnd, 16), alignUp(maxEnd, A) - base);
      vaddr = off + base;
    } else {
      off = alignUp(fileEnd, 16);
      vaddr = alignUp(maxEnd, A) + (off % A);
    }
    const phdr: Phdr = { index, at: -1, type: PT.LOAD, flags, offset: off, vaddr, paddr: vaddr, filesz: total, memsz: total, align: A };
    this.newLoad = { phdr, slot, index };
    if (t) this.shiftTail(t, off - t.at + total);
    else plan.append = { off, len: total };
    if (slot === 'null') {
      phdr.at = this.phdrs[index]!.at;
      this.phdrs[index] = phdr;
    } else {
      phdr.at = slot === 'grow' ? h.phoff + h.phnum * es : -1;
      this.phdrs.push(phdr);
      plan.putField(h.bits === 64 ? 56 : 44, 2, phnum);
      const self = this.phdrs.find((p) => p.type === PT.PHDR);
      if (slot === 'grow') {
        if (self) (self.filesz += es), (self.memsz += es);
      } else {
        const at: Region = phtCave ?? { off, vaddr, inPlace: false, how: 'new-load' };
        this.phtMovedTo = at;
        const fileOff = at.inPlace ? plan.map(at.off) : at.off;
        plan.putWord(h.bits === 64 ? 32 : 28, fileOff);
        if (self) Object.assign(self, { offset: fileOff, vaddr: at.vaddr, paddr: at.vaddr, filesz: phtLen, memsz: phtLen });
        if (addPhdr) this.phdrs.unshift({ index: -1, at: -1, type: PT.PHDR, flags: PF.R, offset: fileOff, vaddr: at.vaddr, paddr: at.vaddr, filesz: phtLen, memsz: phtLen, align: 8 });
      }
    }
    return { off: off + inSegment, vaddr: vaddr + inSegment, inPlace: false, how: 'new-load' };
  }

  /**
   * A read-only LOAD at the image base whose addresses have room for `len` more bytes before the next
   * LOAD's first page, and whose file end cuts through nothing (so the file can open there).
   */
  private gapAfter(len: number): Phdr | undefined {
    const base = this.phtBase();
    const loads = this.loads();
    const claims = this.claims({ skipLoads: true });
    return loads.find((p) => {
      if (p.flags & PF.W || p.filesz !== p.memsz || p.vaddr - p.offset !== base) return false;
      const at = p.offset + p.filesz;
      const next = loads.filter((q) => q.vaddr > p.vaddr).sort((a, b) => a.vaddr - b.vaddr)[0];
      if (next && p.vaddr + (alignUp(at, 8) + len - p.offset) > alignDown(next.vaddr, this.pageSize)) return false;
      return at <= this.plan.orig.size && !claims.some((c) => c.off < at && c.off + c.len > at);
    });
  }

  /**
   * Opens a gap of whole pages (`align`) after such a LOAD by shifting every later byte of the file:
   * file offsets change, addresses do not, and offset ≡ vaddr (mod p_align) still holds. The LOAD grows
   * over `len` bytes of the gap. Costs one page instead of padding an executable to its image end.
   */
  private openGap(len: number, align: number): Region | undefined {
    const { plan, elf } = this;
    const p = this.gapAfter(len);
    if (!p || plan.insert) return undefined;
    const at = p.offset + p.filesz;
    const start = alignUp(at, 8);
    const gap = alignUp(start - at + len, align);
    plan.insert = { at, len: gap };
    // Every later segment moves with its bytes, empty ones too (a PT_TLS of .tbss only keeps its place in
    // the writable LOAD), as every later section does.
    for (const q of this.phdrs) if (q !== p && q.type !== PT.NULL && q.offset >= at) q.offset += gap;
    for (const s of elf.shdrs) if (s.type !== SHT.NULL && s.offset >= at) plan.putShdrPlacement(s, { offset: s.offset + gap });
    if (elf.header.shoff >= at) plan.putWord(elf.header.bits === 64 ? 40 : 32, elf.header.shoff + gap);
    p.filesz = p.memsz = start + len - p.offset;
    return { off: start, vaddr: p.vaddr + (start - p.offset), inPlace: false, how: 'gap' };
  }

  /**
   * Describes new bytes with one more section header (64-bit files with section headers only): a copy of
   * the section-header table with the entry added and a copy of .shstrtab with its name are appended to
   * the file, and e_shoff and e_shnum point at them (the old table stays, unused). Without it a new code
   * segment holds no code section: eu-elflint reports "executable but contains no executable sections",
   * and GNU strip empties such a segment. Returns false when the file has no section headers to extend.
   */
  addSectionHeader(name: string, s: { type: number; flags: number; addr: number; offset: number; size: number; align: number }): boolean {
    const { plan, elf } = this;
    const h = elf.header;
    const strtab = elf.shdrs[h.shstrndx];
    if (h.bits !== 64 || elf.shdrs.length === 0 || h.shnum + 1 >= 0xff00 || !strtab || strtab.type !== SHT.STRTAB) return false;
    const names = plan.after({ off: strtab.offset, len: strtab.size });
    const table = new Uint8Array((h.shnum + 1) * h.shentsize);
    table.set(plan.after({ off: h.shoff, len: h.shnum * h.shentsize }));
    const start = alignUp(plan.append ? plan.append.off + plan.append.len : plan.shiftedSize, 8);
    const nameBytes = Buffer.from(`${name}\0`, 'latin1');
    const tableOff = alignUp(start + names.length + nameBytes.length, 8);
    const w = new ByteWriter(table, plan.le, true);
    const at = strtab.index * h.shentsize;
    w.set64(at + 24, start); // .shstrtab: sh_offset, sh_size
    w.set64(at + 32, names.length + nameBytes.length);
    const e = h.shnum * h.shentsize;
    w.set32(e, names.length); w.set32(e + 4, s.type); w.set64(e + 8, s.flags); w.set64(e + 16, s.addr);
    w.set64(e + 24, s.offset); w.set64(e + 32, s.size); w.set64(e + 48, s.align);
    plan.putNew(start, names);
    plan.putNew(start + names.length, nameBytes);
    plan.putNew(tableOff, table);
    const end = tableOff + table.length;
    plan.append = plan.append ? { off: plan.append.off, len: end - plan.append.off } : { off: plan.shiftedSize, len: end - plan.shiftedSize };
    plan.putWord(40, tableOff); // e_shoff
    plan.putField(60, 2, h.shnum + 1); // e_shnum
    return true;
  }

  /** The image base old kernels add e_phoff to: vaddr - offset of the first PT_LOAD. */
  private phtBase(): number | undefined {
    const first = this.elf.phdrs.find((p) => p.type === PT.LOAD);
    return first ? first.vaddr - first.offset : undefined;
  }

  /**
   * Where one more program header goes: a PT_NULL entry, free bytes after the table, a cave at the image
   * base for a moved table, or a moved table at the head of the new segment.
   */
  phtSlot(): { slot: PhtSlot; index: number } {
    const h = this.elf.header;
    const es = h.phentsize;
    const lastLoadIdx = this.phdrs.reduce((m, p) => (p.type === PT.LOAD ? p.index : m), -1);
    const nullIdx = this.phdrs.findIndex((p) => p.index > lastLoadIdx && p.type === PT.NULL);
    if (nullIdx >= 0) return { slot: 'null', index: nullIdx };
    const phtEnd = h.phoff + h.phnum * es;
    const inLoad = this.elf.phdrs.some((p) => p.type === PT.LOAD && h.phoff >= p.offset && phtEnd + es <= p.offset + p.filesz);
    if (inLoad && this.free(phtEnd, phtEnd + es, this.claims({ skipLoads: true }))) return { slot: 'grow', index: h.phnum };
    // Executables only: a library's table at the head of the new segment costs as little and GNU strip
    // keeps it; an executable's would need padding up to image base + offset (AT_PHDR).
    if (this.isExecutable && this.findCave((h.phnum + 1) * es, { align: 8, base: this.phtBase() })) return { slot: 'cave', index: h.phnum };
    if (this.isExecutable && this.gapAfter((h.phnum + 1) * es)) return { slot: 'gap', index: h.phnum };
    return { slot: 'move', index: h.phnum };
  }

  /** Executables must keep the program-header table at image base + e_phoff (AT_PHDR on old kernels). */
  get isExecutable(): boolean {
    return this.executable || this.elf.header.type === 2 || this.elf.phdrs.some((p) => p.type === PT.INTERP);
  }

  /** Writes the program-header model: changed entries in place, or the whole table into the new LOAD. */
  writePhdrs(): void {
    const { plan, elf } = this;
    if (this.phtMovedTo) {
      const table = new Uint8Array(this.phdrs.length * elf.header.phentsize);
      this.phdrs.forEach((p, i) => table.set(plan.encodePhdr(p), i * elf.header.phentsize));
      if (this.phtMovedTo.inPlace) plan.put(this.phtMovedTo.off, table);
      else plan.putNew(this.phtMovedTo.off, table);
      return;
    }
    for (const p of this.phdrs) {
      const orig = elf.phdrs[p.index];
      const bytes = plan.encodePhdr(p);
      if (orig && orig.at === p.at && plan.orig.equals(p.at, bytes)) continue;
      plan.put(p.at, bytes);
    }
  }
}
