/**
 * Bounds-checked, byte-order-aware access to an ELF image. Every read checks its range first, so hostile
 * offsets end in a MambapatchError naming the file and the byte offset, never a RangeError.
 */
import { MambapatchError } from '../errors.js';

export class ElfFormatError extends MambapatchError {
  constructor(reason: string, file?: string) {
    super(reason, { file });
    this.name = 'ElfFormatError';
  }
}

export class ByteView {
  readonly dv: DataView;
  constructor(
    readonly data: Uint8Array,
    readonly le: boolean,
    readonly is64: boolean,
    readonly file?: string,
  ) {
    this.dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  }

  get size(): number {
    return this.data.length;
  }

  fail(reason: string): never {
    throw new ElfFormatError(reason, this.file);
  }

  /** Throws unless [off, off+len) lies inside the file. */
  check(off: number, len: number, what: string): void {
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > this.data.length) {
      this.fail(`${what} at offset ${off} (${len} bytes) runs past the end of the file (${this.data.length} bytes)`);
    }
  }

  u8(off: number): number {
    this.check(off, 1, 'byte');
    return this.data[off]!;
  }
  u16(off: number): number {
    this.check(off, 2, 'field');
    return this.dv.getUint16(off, this.le);
  }
  u32(off: number): number {
    this.check(off, 4, 'field');
    return this.dv.getUint32(off, this.le);
  }
  /** A 64-bit field as a number; values beyond 2^53 are refused (no real offset or size is that large). */
  u64(off: number): number {
    this.check(off, 8, 'field');
    const v = this.dv.getBigUint64(off, this.le);
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(`value 0x${v.toString(16)} at offset ${off} is too large`);
    return Number(v);
  }
  /** A 64-bit field where huge values are legal but only compared (dynamic tags and values). */
  u64Lossy(off: number): number {
    this.check(off, 8, 'field');
    return Number(this.dv.getBigUint64(off, this.le));
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

  /** A NUL-terminated string starting at off, which must end before `limit`. */
  cstr(off: number, limit: number, what: string): string {
    if (off < 0 || off >= limit || limit > this.data.length) this.fail(`${what} at offset ${off} is outside its string table`);
    const end = this.data.indexOf(0, off);
    if (end < 0 || end >= limit) this.fail(`${what} at offset ${off} is not NUL-terminated inside its string table`);
    return Buffer.from(this.data.buffer, this.data.byteOffset + off, end - off).toString('utf8');
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

/** A copy of part of an array (Buffer#slice would return a view into the caller's data). */
export const copyOf = (a: Uint8Array, start: number, end: number): Uint8Array => new Uint8Array(a.subarray(start, end));
