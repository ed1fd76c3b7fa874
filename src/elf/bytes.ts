/**
 * Bounds-checked, byte-order-aware access to an ELF image. Every read checks its range first, so hostile
 * offsets end in a MambapatchError naming the file and the byte offset, never a RangeError.
 */
import * as fs from 'node:fs';
import { endianness } from 'node:os';
import { MambapatchError } from '../errors.js';

export class ElfFormatError extends MambapatchError {
  constructor(reason: string, file?: string) {
    super(reason, { file });
    this.name = 'ElfFormatError';
  }
}

/**
 * Where an ELF image's bytes come from: a buffer in memory, or a file read with positional reads through a
 * small chunk cache (inspection and edit planning read headers and tables, never the whole file).
 */
export interface Source {
  readonly size: number;
  /**
   * A buffer holding [off, off+len) starting at `at` (set by the call; no object is allocated per read);
   * the caller must not keep it past the next call.
   */
  window(off: number, len: number): Buffer;
  readonly at: number;
  /** Copies [pos, pos+len) into buf at 0, bypassing any cache (streaming passes). */
  read(buf: Buffer, len: number, pos: number): void;
}

export class MemorySource implements Source {
  readonly buf: Buffer;
  at = 0;
  constructor(readonly data: Uint8Array) {
    this.buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  }
  get size(): number {
    return this.buf.length;
  }
  window(off: number): Buffer {
    this.at = off;
    return this.buf;
  }
  read(buf: Buffer, len: number, pos: number): void {
    this.buf.copy(buf, 0, pos, pos + len);
  }
}

/** The read cache's chunk, and scanWords' block. */
const CHUNK = 64 << 10;
/** At most this many chunks stay cached (2 MiB): memory does not grow with the file. */
const CACHE_CHUNKS = 32;

export class FileSource implements Source {
  private readonly cache = new Map<number, Buffer>();
  at = 0;
  private lastIndex = -1;
  private last?: Buffer;
  constructor(
    readonly fd: number,
    readonly size: number,
  ) {}

  private chunk(i: number): Buffer {
    if (i === this.lastIndex) return this.last!;
    let c = this.cache.get(i);
    if (c) {
      this.cache.delete(i);
      this.cache.set(i, c);
      this.lastIndex = i;
      return (this.last = c);
    }
    const start = i * CHUNK;
    const len = Math.min(CHUNK, this.size - start);
    // The least recently used chunk's buffer is reused: no garbage per read.
    let reuse: Buffer | undefined;
    if (this.cache.size >= CACHE_CHUNKS) {
      const [oldest, b] = this.cache.entries().next().value!;
      this.cache.delete(oldest);
      if (b.length === len) reuse = b;
    }
    c = reuse ?? Buffer.allocUnsafe(len);
    this.lastIndex = -1;
    this.read(c, len, start);
    this.cache.set(i, c);
    this.lastIndex = i;
    return (this.last = c);
  }

  read(buf: Buffer, len: number, pos: number): void {
    for (let got = 0; got < len; ) {
      const n = fs.readSync(this.fd, buf, got, len - got, pos + got);
      if (n === 0) throw new Error(`file shrank while being read (offset ${pos + got})`);
      got += n;
    }
  }

  window(off: number, len: number): Buffer {
    const i = Math.floor(off / CHUNK);
    const inner = off - i * CHUNK;
    if (inner + len <= CHUNK) {
      const c = this.chunk(i);
      this.at = inner;
      return c;
    }
    const out = Buffer.allocUnsafe(len);
    for (let done = 0; done < len; ) {
      const j = Math.floor((off + done) / CHUNK);
      const c = this.chunk(j);
      const from = off + done - j * CHUNK;
      const n = Math.min(c.length - from, len - done);
      c.copy(out, done, from, from + n);
      done += n;
    }
    this.at = 0;
    return out;
  }
}

/** Opens `path` for positional reads; `use` gets the source and its stat; the descriptor is always closed. */
export function withFileSource<T>(path: string, use: (src: FileSource, st: fs.Stats) => T): T {
  const fd = fs.openSync(path, 'r');
  try {
    const st = fs.fstatSync(fd);
    return use(new FileSource(fd, st.size), st);
  } finally {
    fs.closeSync(fd);
  }
}

export class ByteView {
  readonly src: Source;
  constructor(
    src: Source | Uint8Array,
    readonly le: boolean,
    readonly is64: boolean,
    readonly file?: string,
  ) {
    this.src = src instanceof Uint8Array ? new MemorySource(src) : src;
  }

  get size(): number {
    return this.src.size;
  }

  fail(reason: string): never {
    throw new ElfFormatError(reason, this.file);
  }

  /** Throws unless [off, off+len) lies inside the file. */
  check(off: number, len: number, what: string): void {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.size) {
      this.fail(`${what} at offset ${off} (${len} bytes) runs past the end of the file (${this.size} bytes)`);
    }
  }

  private w(off: number, len: number): Buffer {
    this.check(off, len, len === 1 ? 'byte' : 'field');
    return this.src.window(off, len);
  }

  u8(off: number): number {
    return this.w(off, 1)[this.src.at]!;
  }
  u16(off: number): number {
    const buf = this.w(off, 2);
    return this.le ? buf.readUInt16LE(this.src.at) : buf.readUInt16BE(this.src.at);
  }
  u32(off: number): number {
    const buf = this.w(off, 4);
    return this.le ? buf.readUInt32LE(this.src.at) : buf.readUInt32BE(this.src.at);
  }
  /** The high and low halves of a 64-bit field (two 32-bit reads: no BigInt or array per read). */
  private hi(off: number): number {
    this.check(off, 8, 'field');
    return this.u32(this.le ? off + 4 : off);
  }
  private lo(off: number): number {
    return this.u32(this.le ? off : off + 4);
  }
  /** A 64-bit field as a number; values beyond 2^53 are refused (no real offset or size is that large). */
  u64(off: number): number {
    const hi = this.hi(off);
    const lo = this.lo(off);
    if (hi > 0x1fffff) this.fail(`value 0x${(BigInt(hi) * 2n ** 32n + BigInt(lo)).toString(16)} at offset ${off} is too large`);
    return hi * 2 ** 32 + lo;
  }
  /** A 64-bit field where huge values are legal but only compared (dynamic tags and values). */
  u64Lossy(off: number): number {
    return this.hi(off) * 2 ** 32 + this.lo(off);
  }
  /** An address-sized field (4 or 8 bytes by class). */
  word(off: number): number {
    return this.is64 ? this.u64(off) : this.u32(off);
  }
  wordLossy(off: number): number {
    return this.is64 ? this.u64Lossy(off) : this.u32(off);
  }
  get wordSize(): number {
    return this.is64 ? 8 : 4;
  }

  /** A copy of [off, off+len). */
  bytes(off: number, len: number): Uint8Array {
    this.check(off, len, 'range');
    if (len === 0) return new Uint8Array(0);
    const buf = this.src.window(off, len);
    return new Uint8Array(buf.subarray(this.src.at, this.src.at + len));
  }

  /** Whether [off, off+len) equals `b`. */
  equals(off: number, b: Uint8Array): boolean {
    if (off < 0 || off + b.length > this.size) return false;
    const buf = this.src.window(off, b.length);
    return buf.subarray(this.src.at, this.src.at + b.length).equals(b);
  }

  /** Whether every byte of [start, end) is zero (read a chunk at a time). */
  isZero(start: number, end: number): boolean {
    for (let off = start; off < end; ) {
      const n = Math.min(CHUNK, end - off);
      const buf = this.src.window(off, n);
      const at = this.src.at;
      for (let i = at; i < at + n; i++) if (buf[i] !== 0) return false;
      off += n;
    }
    return true;
  }

  /** The first offset >= from where `needle` starts and ends before `end`, or -1 (read a chunk at a time). */
  indexOf(needle: Uint8Array | number, from: number, end = this.size): number {
    const nd = typeof needle === 'number' ? Buffer.from([needle]) : Buffer.from(needle.buffer, needle.byteOffset, needle.byteLength);
    end = Math.min(end, this.size);
    for (let off = Math.max(0, from); off + nd.length <= end; ) {
      // Within one chunk (no copy), then the few bytes where a match could straddle the next one.
      const n = Math.min(CHUNK - (off % CHUNK), end - off);
      const buf = this.src.window(off, n);
      const i = buf.subarray(this.src.at, this.src.at + n).indexOf(nd);
      if (i >= 0) return off + i;
      const next = off + n;
      if (nd.length > 1 && next < end) {
        const s = Math.max(off, next - nd.length + 1);
        const e = Math.min(end, next + nd.length - 1);
        const w = this.src.window(s, e - s);
        const j = w.subarray(this.src.at, this.src.at + e - s).indexOf(nd);
        if (j >= 0) return s + j;
      }
      off = next;
    }
    return -1;
  }

  /**
   * Visits the `count` entries of `entsize` bytes (a multiple of 4) at `off`, read in 64 KiB blocks as
   * 32-bit words in the host's byte order (the block is swapped once when the file's differs): `fn(i, w, at)`
   * finds entry i's fields at w[at], w[at + 1], ... (a 64-bit field is a pair in the file's word order).
   * Symbol and relocation tables have hundreds of thousands of entries: no object is made per entry.
   */
  scanWords(off: number, count: number, entsize: number, fn: (i: number, w: Uint32Array, at: number) => void): void {
    if (count <= 0) return;
    if (entsize <= 0 || entsize % 4 !== 0 || entsize > CHUNK) this.fail(`table entry size ${entsize} at offset ${off} is not a multiple of 4`);
    this.check(off, count * entsize, 'table');
    const block = new ArrayBuffer(CHUNK);
    const buf = Buffer.from(block);
    const w = new Uint32Array(block);
    const swap = this.le !== (endianness() === 'LE');
    const per = Math.floor(CHUNK / entsize);
    const words = entsize / 4;
    for (let first = 0; first < count; first += per) {
      const n = Math.min(per, count - first);
      this.src.read(buf, n * entsize, off + first * entsize);
      if (swap) buf.subarray(0, n * entsize).swap32();
      for (let i = 0; i < n; i++) fn(first + i, w, i * words);
    }
  }

  /** The 64-bit value of the word pair at w[at] (scanWords), in the file's word order. */
  pair(w: Uint32Array, at: number): number {
    return this.le ? w[at + 1]! * 2 ** 32 + w[at]! : w[at]! * 2 ** 32 + w[at + 1]!;
  }

  /** A NUL-terminated string starting at off, which must end before `limit`. */
  cstr(off: number, limit: number, what: string): string {
    if (off < 0 || off >= limit || limit > this.size) this.fail(`${what} at offset ${off} is outside its string table`);
    const end = this.indexOf(0, off, limit);
    if (end < 0) this.fail(`${what} at offset ${off} is not NUL-terminated inside its string table`);
    const buf = this.src.window(off, end - off);
    return buf.toString('utf8', this.src.at, this.src.at + end - off);
  }
}

/** Writes fields into a buffer in a given byte order and class. */
export class ByteWriter {
  readonly dv: DataView;
  constructor(
    readonly data: Uint8Array,
    readonly le: boolean,
    readonly is64: boolean,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }
  set16(off: number, v: number): void {
    this.dv.setUint16(off, v, this.le);
  }
  set32(off: number, v: number): void {
    this.dv.setUint32(off, v >>> 0, this.le);
  }
  set64(off: number, v: number): void {
    this.dv.setBigUint64(off, BigInt(v), this.le);
  }
  setWord(off: number, v: number): void {
    if (this.is64) this.set64(off, v);
    else this.set32(off, v);
  }
}

/** Overflow-safe a + b for sizes read from a file. */
export function add(a: number, b: number, view: ByteView, what: string): number {
  const s = a + b;
  if (!Number.isSafeInteger(s)) view.fail(`${what} overflows`);
  return s;
}

export const alignUp = (v: number, a: number): number => (a <= 1 ? v : Math.ceil(v / a) * a);
export const alignDown = (v: number, a: number): number => (a <= 1 ? v : Math.floor(v / a) * a);
export const isPow2 = (v: number): boolean => v > 0 && Number.isSafeInteger(v) && 2 ** Math.round(Math.log2(v)) === v;

