/**
 * Where relocated tables go, first fit: a cave after a non-writable PT_LOAD, the end of the last
 * writable PT_LOAD (shifting only the non-alloc tail), or a new PT_LOAD whose program-header slot is a
 * PT_NULL entry, unclaimed bytes after the table, or a moved table. Program headers are kept as a mutable
 * model and written once at the end (in place, or into the new segment when the table moves).
 */
import { alignDown, alignUp, isPow2 } from './bytes.js';
import { PF, PT, SHF, SHT, maxPageSize } from './constants.js';
import type { Phdr, Shdr } from './parse.js';
import type { Plan, Range } from './plan.js';

export interface Region {
  /** Final file offset. */
  off: number;
  vaddr: number;
  /** True when the region is inside the original bytes (a cave): write with plan.put. */
  inPlace: boolean;
  how: 'cave' | 'extend' | 'new-load';
}

export class Layout {
  readonly phdrs: Phdr[];
  readonly pageSize: number;
  /** Set when a new PT_LOAD is added. */
  newLoad?: { phdr: Phdr; slot: 'null' | 'grow' | 'move'; index: number };
  phtMoved = false;

  constructor(readonly plan: Plan) {
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

  /** Padding after a read-only PT_LOAD that can hold `len` bytes without growing the file. */
  cave(len: number): Region | undefined {
    const data = this.plan.orig;
    const loads = this.loads();
    const cands = loads
      .filter((p) => !(p.flags & PF.W) && p.filesz === p.memsz)
      .sort((a, b) => (a.flags & PF.X) - (b.flags & PF.X));
    const claims = this.claims();
    for (const p of cands) {
      const start = p.offset + p.filesz;
      const end = start + len;
      if (end > data.length) continue;
      const next = loads.filter((q) => q.vaddr > p.vaddr).sort((a, b) => a.vaddr - b.vaddr)[0];
      const vend = p.vaddr + p.filesz + len;
      if (next && vend > alignDown(next.vaddr, this.pageSize)) continue;
      if (!this.free(start, end, claims)) continue;
      if (!isZero(data, start, end)) continue;
      const region: Region = { off: start, vaddr: p.vaddr + p.filesz, inPlace: true, how: 'cave' };
      p.filesz += len;
      p.memsz += len;
      return region;
    }
    return undefined;
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
    if (at > plan.orig.length) return undefined;
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
    if (h.phnum + 1 >= 0xffff) return { refused: 'too many program headers' };
    const { slot, index } = this.phtSlot();
    const A = Math.max(this.pageSize, ...this.loads().map((p) => p.align));
    if (!isPow2(A) || A > 1 << 28) return { refused: `implausible segment alignment 0x${A.toString(16)}` };
    const phtLen = slot === 'move' ? (h.phnum + 1) * es : 0;
    const total = alignUp(phtLen, 16) + len;
    const maxEnd = Math.max(...this.loads().map((p) => p.vaddr + p.memsz));
    // Before the non-alloc tail when it can shift (strip tools rewrite what lies after the sections),
    // else appended to the file.
    const t = this.tail();
    const fileEnd = t ? t.at : plan.shiftedSize;
    let off: number;
    let vaddr: number;
    if (slot === 'move' && this.isExecutable) {
      // Old kernels and qemu-user compute AT_PHDR as first-LOAD base + e_phoff: keep vaddr - offset = base.
      const first = this.loads()[0]!;
      const base = first.vaddr - first.offset;
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
      plan.putField(h.bits === 64 ? 56 : 44, 2, h.phnum + 1);
      const self = this.phdrs.find((p) => p.type === PT.PHDR);
      if (slot === 'move') {
        this.phtMoved = true;
        plan.putWord(h.bits === 64 ? 32 : 28, off);
        if (self) Object.assign(self, { offset: off, vaddr, paddr: vaddr, filesz: phtLen, memsz: phtLen });
      } else if (self) {
        self.filesz += es;
        self.memsz += es;
      }
    }
    return { off: off + alignUp(phtLen, 16), vaddr: vaddr + alignUp(phtLen, 16), inPlace: false, how: 'new-load' };
  }

  /** Where one more program header goes: a PT_NULL entry, free bytes after the table, or a moved table. */
  phtSlot(): { slot: 'null' | 'grow' | 'move'; index: number } {
    const h = this.elf.header;
    const es = h.phentsize;
    const lastLoadIdx = this.phdrs.reduce((m, p) => (p.type === PT.LOAD ? p.index : m), -1);
    const nullIdx = this.phdrs.findIndex((p) => p.index > lastLoadIdx && p.type === PT.NULL);
    if (nullIdx >= 0) return { slot: 'null', index: nullIdx };
    const phtEnd = h.phoff + h.phnum * es;
    const inLoad = this.elf.phdrs.some((p) => p.type === PT.LOAD && h.phoff >= p.offset && phtEnd + es <= p.offset + p.filesz);
    if (inLoad && this.free(phtEnd, phtEnd + es, this.claims({ skipLoads: true }))) return { slot: 'grow', index: h.phnum };
    return { slot: 'move', index: h.phnum };
  }

  /** Executables must keep the program-header table at image base + e_phoff (AT_PHDR on old kernels). */
  get isExecutable(): boolean {
    return this.elf.header.type === 2 || this.elf.phdrs.some((p) => p.type === PT.INTERP);
  }

  /** Writes the program-header model: changed entries in place, or the whole table into the new LOAD. */
  writePhdrs(): void {
    const { plan, elf } = this;
    if (this.phtMoved) {
      const table = new Uint8Array(this.phdrs.length * elf.header.phentsize);
      this.phdrs.forEach((p, i) => table.set(plan.encodePhdr(p), i * elf.header.phentsize));
      plan.putNew(this.newLoad!.phdr.offset, table);
      return;
    }
    for (const p of this.phdrs) {
      const orig = elf.phdrs[p.index];
      const bytes = plan.encodePhdr(p);
      if (orig && orig.at === p.at && sameBytes(plan.orig, p.at, bytes)) continue;
      plan.put(p.at, bytes);
    }
  }
}

export function isZero(data: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (data[i] !== 0) return false;
  return true;
}

function sameBytes(data: Uint8Array, off: number, bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (data[off + i] !== bytes[i]) return false;
  return true;
}
