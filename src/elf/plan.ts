/**
 * An edit plan against an original image: in-place writes (original coordinates), at most one insertion
 * (bytes inserted at an original offset, shifting the tail), and at most one appended block. `build()`
 * assembles the new image with native copies only; the written ranges are what the undo record and the
 * verifier look at.
 */
import { ByteWriter, ElfFormatError } from './bytes.js';

/** No sane edit adds more than this (a new segment is at most the tables plus alignment padding). */
const MAX_GROWTH = 1 << 30;
import type { ElfFile, Phdr, Shdr } from './parse.js';

export interface Range {
  off: number;
  len: number;
}

export class Plan {
  readonly orig: Uint8Array;
  readonly le: boolean;
  readonly is64: boolean;
  /** In-place writes, in original coordinates. */
  readonly writes: { off: number; bytes: Uint8Array }[] = [];
  /** Writes into new bytes (inserted or appended), in final coordinates. */
  readonly newWrites: { off: number; bytes: Uint8Array }[] = [];
  insert?: { at: number; len: number };
  append?: { off: number; len: number };

  constructor(readonly elf: ElfFile) {
    this.orig = elf.view.data;
    this.le = elf.header.le;
    this.is64 = elf.header.bits === 64;
  }

  /** Final offset of an original offset. */
  map(off: number): number {
    return this.insert && off >= this.insert.at ? off + this.insert.len : off;
  }

  get shiftedSize(): number {
    return this.orig.length + (this.insert?.len ?? 0);
  }

  put(off: number, bytes: Uint8Array): void {
    if (off < 0 || off + bytes.length > this.orig.length) throw new Error(`internal: in-place write at ${off} outside the file`);
    this.writes.push({ off, bytes });
  }
  putNew(off: number, bytes: Uint8Array): void {
    this.newWrites.push({ off, bytes });
  }

  field(size: 2 | 4 | 8, v: number): Uint8Array {
    const b = new Uint8Array(size);
    const w = new ByteWriter(b, this.le, this.is64);
    if (size === 2) w.set16(0, v);
    else if (size === 4) w.set32(0, v);
    else w.set64(0, v);
    return b;
  }
  putField(off: number, size: 2 | 4 | 8, v: number): void {
    this.put(off, this.field(size, v));
  }
  putWord(off: number, v: number): void {
    this.putField(off, this.is64 ? 8 : 4, v);
  }

  encodePhdr(p: Phdr): Uint8Array {
    const b = new Uint8Array(this.is64 ? 56 : 32);
    const w = new ByteWriter(b, this.le, this.is64);
    if (this.is64) {
      w.set32(0, p.type); w.set32(4, p.flags); w.set64(8, p.offset); w.set64(16, p.vaddr);
      w.set64(24, p.paddr); w.set64(32, p.filesz); w.set64(40, p.memsz); w.set64(48, p.align);
    } else {
      w.set32(0, p.type); w.set32(4, p.offset); w.set32(8, p.vaddr); w.set32(12, p.paddr);
      w.set32(16, p.filesz); w.set32(20, p.memsz); w.set32(24, p.flags); w.set32(28, p.align);
    }
    return b;
  }

  /** Writes a section header's address, offset and size fields in place. */
  putShdrPlacement(s: Shdr, fields: { addr?: number; offset?: number; size?: number }): void {
    const ws = this.is64 ? 8 : 4;
    const base = this.is64 ? 16 : 12; // sh_addr
    if (fields.addr !== undefined) this.putWord(s.at + base, fields.addr);
    if (fields.offset !== undefined) this.putWord(s.at + base + ws, fields.offset);
    if (fields.size !== undefined) this.putWord(s.at + base + 2 * ws, fields.size);
  }

  build(): Uint8Array {
    const o = this.orig;
    const size = Math.max(this.shiftedSize, this.append ? this.append.off + this.append.len : 0);
    if (size > this.orig.length + MAX_GROWTH) throw new ElfFormatError(`the edit would grow the file by ${size - this.orig.length} bytes; its headers are not plausible`, this.elf.view.file);
    const out = new Uint8Array(size);
    if (this.insert) {
      out.set(o.subarray(0, this.insert.at), 0);
      out.set(o.subarray(this.insert.at), this.insert.at + this.insert.len);
    } else {
      out.set(o, 0);
    }
    for (const w of this.writes) out.set(w.bytes, this.map(w.off));
    for (const w of this.newWrites) out.set(w.bytes, w.off);
    return out;
  }

  /** The written original ranges, merged and sorted. */
  writtenRanges(): Range[] {
    const rs = this.writes.map((w) => ({ off: w.off, len: w.bytes.length })).sort((a, b) => a.off - b.off);
    const out: Range[] = [];
    for (const r of rs) {
      const last = out.at(-1);
      if (last && r.off <= last.off + last.len) last.len = Math.max(last.len, r.off + r.len - last.off);
      else out.push({ ...r });
    }
    return out;
  }

  /** Bytes of the original that differ in the result. */
  countChanged(result: Uint8Array): number {
    let n = 0;
    for (const r of this.writtenRanges()) {
      const m = this.map(r.off);
      for (let i = 0; i < r.len; i++) if (this.orig[r.off + i] !== result[m + i]) n++;
    }
    return n;
  }
}
