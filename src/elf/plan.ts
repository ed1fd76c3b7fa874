/**
 * An edit plan against an original image: in-place writes (original coordinates), at most one insertion
 * (bytes inserted at an original offset, shifting the tail), and at most one appended block. `chunks()`
 * produces the new image in one pass over the input, a fixed-size chunk at a time; the written ranges are
 * what the undo record and the verifier look at.
 *
 * An edit's output is a generator of pieces (bytes at an offset), so one producer serves two writers:
 * `drain` writes each piece before the next is made (memory, tests, apply), and the file editor's
 * pipeline writes them on the thread pool while the next chunks are read and hashed.
 */
import type { Hash } from 'node:crypto';
import { ByteView, ByteWriter, ElfFormatError } from './bytes.js';
import type { ElfFile, Phdr, Shdr } from './parse.js';
import type { Counts, MovedRange } from './result.js';

/** No sane edit adds more than this (a new segment is at most the tables plus alignment padding). */
const MAX_GROWTH = 1 << 30;
/** The streaming buffer: memory does not grow with the file. */
export const STREAM_CHUNK = 1 << 20;

/** Drop everything written so far (an exact restore that turned out stale is rewritten). */
export const RESET = Symbol('reset');
/** One piece of an edit's output: bytes at an offset of the result, or RESET. */
export type Piece = { buf: Uint8Array; off: number } | typeof RESET;
/** An edit's output, in order; its return value is what the edit reports. */
export type Output<R = void> = Generator<Piece, R, void>;
/**
 * Gives the buffer the producer fills for its next chunk. A piece's bytes stay untouched until the
 * producer takes another buffer, or longer when the writer hands out a different one each time.
 */
export type Take = (size: number) => Buffer;

/** A Take for writers that consume each piece before the next is made: one buffer, reused. */
export function scratch(): Take {
  let buf: Buffer | undefined;
  return (n) => (buf && buf.length >= n ? buf : (buf = Buffer.alloc(n))).subarray(0, n);
}

/** Writes every piece of `out` into `sink` as it comes; returns the output's result. */
export function drain<R>(out: Output<R>, sink: Sink): R {
  for (;;) {
    const step = out.next();
    if (step.done) return step.value;
    if (step.value === RESET) sink.reset();
    else sink.write(step.value.buf, step.value.off);
  }
}

/** Where an edit's output goes: positional writes (a temporary file, or a buffer in memory). */
export interface Sink {
  write(buf: Uint8Array, off: number): void;
  /** Drops everything written so far (an exact restore that turned out stale is rewritten). */
  reset(): void;
}

export class MemorySink implements Sink {
  private buf: Buffer;
  private len = 0;
  /** `capacity`: the size expected (the input's), so that the buffer is allocated once. */
  constructor(capacity = 0) {
    this.buf = Buffer.alloc(capacity);
  }
  write(b: Uint8Array, off: number): void {
    const end = off + b.length;
    if (end > this.buf.length) {
      const next = Buffer.alloc(Math.max(end, this.buf.length * 2));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    this.buf.set(b, off);
    this.len = Math.max(this.len, end);
  }
  reset(): void {
    this.buf.fill(0, 0, this.len);
    this.len = 0;
  }
  data(): Uint8Array {
    return new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.len);
  }
}

/**
 * Feeds the parts of a stream that fall into `ranges` (sorted, non-overlapping, stream coordinates) to
 * `hash`, as the stream passes by in order; bytes inside `zero` (the undo record) are hashed as zeros.
 */
export class RangeHasher {
  private i = 0;
  constructor(
    readonly ranges: Range[],
    readonly hash: Hash,
    readonly zero?: Range,
  ) {}
  feed(buf: Uint8Array, off: number): void {
    const end = off + buf.length;
    while (this.i < this.ranges.length) {
      const r = this.ranges[this.i]!;
      const s = Math.max(r.off, off);
      const e = Math.min(r.off + r.len, end);
      if (s < e) {
        const z = this.zero;
        if (z && z.off < e && z.off + z.len > s) {
          const part = new Uint8Array(buf.subarray(s - off, e - off));
          part.fill(0, Math.max(z.off, s) - s, Math.min(z.off + z.len, e) - s);
          this.hash.update(part);
        } else this.hash.update(buf.subarray(s - off, e - off));
      }
      if (r.off + r.len <= end) this.i++;
      else break;
    }
  }
}

export interface Range {
  off: number;
  len: number;
}

/** `ranges` sorted by offset, overlapping and touching ones merged (copies: the input is not changed). */
export function mergeRanges(ranges: Range[]): Range[] {
  const out: Range[] = [];
  for (const r of [...ranges].sort((a, b) => a.off - b.off)) {
    const last = out.at(-1);
    if (last && r.off <= last.off + last.len) last.len = Math.max(last.len, r.off + r.len - last.off);
    else out.push({ off: r.off, len: r.len });
  }
  return out;
}

/** Bytes to write at `off`: given, or copied from the original at `from`. */
export interface Write extends Range {
  bytes?: Uint8Array;
  from?: number;
}

export class Plan {
  readonly orig: ByteView;
  readonly le: boolean;
  readonly is64: boolean;
  /** In-place writes, in original coordinates. */
  readonly writes: Write[] = [];
  /** Writes into new bytes (inserted or appended), in final coordinates. */
  readonly newWrites: Write[] = [];
  insert?: { at: number; len: number };
  append?: { off: number; len: number };

  constructor(readonly elf: ElfFile) {
    this.orig = elf.view;
    this.le = elf.header.le;
    this.is64 = elf.header.bits === 64;
  }

  /** Final offset of an original offset. */
  map(off: number): number {
    return this.insert && off >= this.insert.at ? off + this.insert.len : off;
  }

  /** The original offset whose byte sits at final offset `off`; undefined for inserted and appended bytes. */
  origin(off: number): number | undefined {
    const ins = this.insert;
    if (ins && off >= ins.at) {
      if (off < ins.at + ins.len) return undefined;
      off -= ins.len;
    }
    return off < this.orig.size ? off : undefined;
  }

  get shiftedSize(): number {
    return this.orig.size + (this.insert?.len ?? 0);
  }

  put(off: number, bytes: Uint8Array): void {
    this.putIn(this.writes, { off, len: bytes.length, bytes });
  }
  putNew(off: number, bytes: Uint8Array): void {
    this.newWrites.push({ off, len: bytes.length, bytes });
  }
  /** A copy of the original's [from, from+len) at `off`, read while streaming (never held in memory). */
  copy(off: number, from: number, len: number, inPlace: boolean): void {
    if (inPlace) this.putIn(this.writes, { off, len, from });
    else this.newWrites.push({ off, len, from });
  }
  private putIn(list: Write[], w: Write): void {
    if (w.off < 0 || w.off + w.len > this.orig.size) throw new Error(`internal: in-place write at ${w.off} outside the file`);
    list.push(w);
  }

  /** Copies the part [s, e) (plan coordinates of `w`) of a write's bytes into `dst`. */
  private fill(w: Write, s: number, e: number, dst: Uint8Array): void {
    if (w.bytes) dst.set(w.bytes.subarray(s - w.off, e - w.off));
    else this.orig.src.read(Buffer.from(dst.buffer, dst.byteOffset, e - s), e - s, w.from! + (s - w.off));
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

  /** Size of the result. */
  get size(): number {
    return Math.max(this.shiftedSize, this.append ? this.append.off + this.append.len : 0);
  }

  /**
   * The result in one pass over the input, in chunks of at most STREAM_CHUNK bytes: input bytes (with the
   * insertion opened as zeros), appended zeros, then every write that falls into the chunk. `input` sees the
   * original bytes in order (the undo record's hash), `regions` the result's bytes in its ranges.
   */
  *chunks(take: Take, hashes: { input?: Hash; regions?: RangeHasher } = {}): Output {
    const size = this.size;
    if (size > this.orig.size + MAX_GROWTH) throw new ElfFormatError(`the edit would grow the file by ${size - this.orig.size} bytes; its headers are not plausible`, this.elf.view.file);
    const overlays = [...this.writes.map((w) => ({ ...w, off: this.map(w.off) })), ...this.newWrites];
    const ins = this.insert ?? { at: this.orig.size, len: 0 };
    for (let out = 0; out < size; out += STREAM_CHUNK) {
      const n = Math.min(STREAM_CHUNK, size - out);
      const chunk = take(n);
      // Input before the insertion, zeros inside it, the shifted input after it, zeros past the input.
      for (let p = out; p < out + n; ) {
        let src: number | undefined;
        let len: number;
        if (p < ins.at) (src = p), (len = Math.min(out + n, ins.at) - p);
        else if (p < ins.at + ins.len) len = Math.min(out + n, ins.at + ins.len) - p;
        else if (p - ins.len < this.orig.size) (src = p - ins.len), (len = Math.min(out + n - p, this.orig.size - src));
        else len = out + n - p;
        const part = chunk.subarray(p - out, p - out + len);
        if (src === undefined) part.fill(0);
        else {
          this.orig.src.read(part, len, src);
          hashes.input?.update(part);
        }
        p += len;
      }
      for (const o of overlays) {
        const s = Math.max(o.off, out);
        const e = Math.min(o.off + o.len, out + n);
        if (s < e) this.fill(o, s, e, chunk.subarray(s - out, e - out));
      }
      hashes.regions?.feed(chunk, out);
      yield { buf: chunk, off: out };
    }
  }

  /** The bytes of an original range as the plan leaves them (writes apply in order). */
  after(r: Range): Uint8Array {
    const now = this.orig.bytes(r.off, r.len);
    for (const w of this.writes) {
      const s = Math.max(w.off, r.off);
      const e = Math.min(w.off + w.len, r.off + r.len);
      if (s < e) this.fill(w, s, e, now.subarray(s - r.off, e - r.off));
    }
    return now;
  }

  /** The written original ranges, merged and sorted. */
  writtenRanges(): Range[] {
    return mergeRanges(this.writes);
  }

  /** Bytes of the original that differ in the result. */
  countChanged(): number {
    let n = 0;
    for (const r of this.writtenRanges()) {
      const was = this.orig.bytes(r.off, r.len);
      const now = this.after(r);
      for (let i = 0; i < r.len; i++) if (was[i] !== now[i]) n++;
    }
    return n;
  }

  /** Original bytes that sit at another offset in the result (the tail after an insertion). */
  moved(): MovedRange[] {
    if (!this.insert || this.insert.at >= this.orig.size) return [];
    return [{ from: this.insert.at, to: this.insert.at + this.insert.len, length: this.orig.size - this.insert.at }];
  }

  /** What the result does to the file, in numbers (every edit's report carries these). */
  counts(): Counts {
    const moved = this.moved();
    return { bytesChanged: this.countChanged(), bytesAdded: this.size - this.orig.size, bytesMoved: moved.reduce((n, m) => n + m.length, 0), moved };
  }
}
