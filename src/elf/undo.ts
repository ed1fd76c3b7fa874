/**
 * The undo record: one extra string in the relocated .dynstr (SHF_ALLOC, so strip keeps it) that lets
 * removeNeeded restore the original file byte for byte. It holds the library name, the original size and
 * SHA-256, the SHA-256 of the edited file with the record's own bytes zeroed, the original bytes of every
 * in-place change, the ranges that were zero, and the tail insertion (offset, length) if any.
 */
import { createHash } from 'node:crypto';
import { MambapatchError } from '../errors.js';
import { copyOf } from './bytes.js';
import type { Plan } from './plan.js';
import { checkEdit, markVerified } from './verify.js';

export const UNDO_PREFIX = 'MAMBAPATCH-UNDO:2:';
const PAD = '.';

export interface UndoRecord {
  /** library name */
  n: string;
  /** original size */
  s: number;
  /** sha256 of the original (hex) */
  h: string;
  /** sha256 of the edited file with the record zeroed (hex) */
  e: string;
  /** original bytes of in-place changes: [offset, bytes] */
  c: [number, Uint8Array][];
  /** original ranges that were all zero: [offset, length] */
  z: [number, number][];
  /** tail insertion: [original offset, length] */
  i?: [number, number];
}

export function sha256(data: Uint8Array, zero?: { off: number; len: number }): string {
  const h = createHash('sha256');
  if (!zero) {
    h.update(data);
  } else {
    h.update(data.subarray(0, zero.off));
    h.update(new Uint8Array(zero.len));
    h.update(data.subarray(zero.off + zero.len));
  }
  return h.digest('hex');
}

/**
 * The record (edited hash still empty) that turns a plan's result back into the original: zero ranges for
 * written ranges that were zero (caves), and the original bytes where the result differs elsewhere.
 */
export function recordFor(plan: Plan, name: string, origHash: string): UndoRecord {
  const rec: UndoRecord = { n: name, s: plan.orig.length, h: origHash, e: '', c: [], z: [] };
  const o = plan.orig;
  for (const r of plan.writtenRanges()) {
    if (o.subarray(r.off, r.off + r.len).every((b) => b === 0)) {
      rec.z.push([r.off, r.len]);
      continue;
    }
    // The range as the plan leaves it (writes apply in order), compared with the original.
    const now = copyOf(o, r.off, r.off + r.len);
    for (const w of plan.writes) {
      if (w.off < r.off + r.len && w.off + w.bytes.length > r.off) now.set(w.bytes, w.off - r.off);
    }
    let i = 0;
    while (i < r.len) {
      if (o[r.off + i] === now[i]) {
        i++;
        continue;
      }
      // A run of differences; gaps shorter than a chunk header are cheaper to include.
      let j = i + 1;
      let same = 0;
      for (; j < r.len && same < 4; j++) same = o[r.off + j] === now[j] ? same + 1 : 0;
      const end = j - same;
      rec.c.push([r.off + i, copyOf(o, r.off + i, r.off + end)]);
      i = end;
    }
  }
  if (plan.insert) rec.i = [plan.insert.at, plan.insert.len];
  return rec;
}

function varint(out: number[], v: number): void {
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
}

/** The record as a string of exactly `len` bytes (padded), or undefined when it does not fit. */
export function encodeRecord(rec: UndoRecord, len?: number): string | undefined {
  const b: number[] = [];
  const name = Buffer.from(rec.n, 'utf8');
  varint(b, name.length);
  b.push(...name);
  varint(b, rec.s);
  b.push(...Buffer.from(rec.h.padEnd(64, '0'), 'hex'), ...Buffer.from(rec.e.padEnd(64, '0'), 'hex'));
  varint(b, rec.i ? rec.i[0] + 1 : 0);
  if (rec.i) varint(b, rec.i[1]);
  varint(b, rec.z.length);
  for (const [off, n] of rec.z) (varint(b, off), varint(b, n));
  varint(b, rec.c.length);
  for (const [off, bytes] of rec.c) {
    varint(b, off);
    varint(b, bytes.length);
    for (const x of bytes) b.push(x);
  }
  const s = UNDO_PREFIX + Buffer.from(b).toString('base64url');
  if (len === undefined) return s;
  return s.length > len ? undefined : s + PAD.repeat(len - s.length);
}

export function decodeRecord(text: string): UndoRecord | undefined {
  if (!text.startsWith(UNDO_PREFIX)) return undefined;
  let body = text.slice(UNDO_PREFIX.length);
  while (body.endsWith(PAD)) body = body.slice(0, -1);
  const b = Buffer.from(body, 'base64url');
  let p = 0;
  const need = (n: number): void => {
    if (p + n > b.length) throw new Error('short record');
  };
  const num = (): number => {
    let v = 0;
    for (let shift = 1; ; shift *= 0x80) {
      need(1);
      const x = b[p++]!;
      v += (x & 0x7f) * shift;
      if (!(x & 0x80)) return v;
      if (shift > 2 ** 49) throw new Error('varint too long');
    }
  };
  const bytes = (n: number): Buffer => {
    need(n);
    const out = b.subarray(p, p + n);
    p += n;
    return out;
  };
  try {
    const n = bytes(num()).toString('utf8');
    const s = num();
    const h = bytes(32).toString('hex');
    const e = bytes(32).toString('hex');
    const at = num();
    const rec: UndoRecord = { n, s, h, e, c: [], z: [] };
    if (at > 0) rec.i = [at - 1, num()];
    for (let k = num(); k > 0; k--) rec.z.push([num(), num()]);
    for (let k = num(); k > 0; k--) {
      const off = num();
      rec.c.push([off, Uint8Array.from(bytes(num()))]);
    }
    return p === b.length ? rec : undefined;
  } catch {
    return undefined;
  }
}

/** Applies a record to an edited image; returns the reconstructed original, or undefined if it cannot. */
export function applyRecord(edited: Uint8Array, rec: UndoRecord): Uint8Array | undefined {
  let buf: Uint8Array = edited;
  if (rec.i) {
    const [at, len] = rec.i;
    if (!(at >= 0 && len >= 0 && at + len <= buf.length)) return undefined;
    const joined = new Uint8Array(buf.length - len);
    joined.set(buf.subarray(0, at), 0);
    joined.set(buf.subarray(at + len), at);
    buf = joined;
  }
  if (!(rec.s >= 0 && rec.s <= buf.length)) return undefined;
  const out = buf === edited ? copyOf(buf, 0, rec.s) : buf.subarray(0, rec.s);
  for (const [off, len] of rec.z) {
    if (!(off >= 0 && off + len <= out.length)) return undefined;
    out.fill(0, off, off + len);
  }
  for (const [off, bytes] of rec.c) {
    if (!(off >= 0 && off + bytes.length <= out.length)) return undefined;
    out.set(bytes, off);
  }
  return out;
}

/**
 * Proves, without copying or hashing the image, that `rec` turns `edited` back into `orig`, given that the
 * bytes outside the written ranges are already known to be equal (the verifier's gap check): applied to
 * each written range of the result, the record gives back the original bytes, and the sizes add up.
 */
export function recordRestores(rec: UndoRecord, plan: Plan, edited: Uint8Array): boolean {
  const orig = plan.orig;
  if (rec.s !== orig.length) return false;
  if ((rec.i?.[1] ?? 0) !== (plan.insert?.len ?? 0) || (rec.i?.[0] ?? 0) !== (plan.insert?.at ?? 0)) return false;
  if (edited.length - (rec.i?.[1] ?? 0) < rec.s) return false;
  return plan.writtenRanges().every((r) => {
    const m = plan.map(r.off);
    const scratch = copyOf(edited, m, m + r.len);
    const put = (off: number, bytes: Uint8Array): void => {
      for (let k = 0; k < bytes.length; k++) {
        const i = off + k - r.off;
        if (i >= 0 && i < r.len) scratch[i] = bytes[k]!;
      }
    };
    for (const [off, len] of rec.z) if (off < r.off + r.len && off + len > r.off) put(off, new Uint8Array(len));
    for (const [off, bytes] of rec.c) put(off, bytes);
    return Buffer.from(scratch).equals(orig.subarray(r.off, r.off + r.len));
  });
}

/** Every record in a string table region, in table order: [file offset, length, record]. */
export function findRecords(data: Uint8Array, start: number, end: number): { off: number; len: number; rec: UndoRecord }[] {
  const out: { off: number; len: number; rec: UndoRecord }[] = [];
  const buf = Buffer.from(data.buffer, data.byteOffset, Math.min(end, data.byteLength));
  let i = buf.indexOf(UNDO_PREFIX, start, 'latin1');
  while (i >= 0 && i < end) {
    const nul = buf.indexOf(0, i);
    const stop = nul < 0 || nul > end ? end : nul;
    if (i === start || buf[i - 1] === 0) {
      const rec = decodeRecord(buf.subarray(i, stop).toString('latin1'));
      if (rec) out.push({ off: i, len: stop - i, rec });
    }
    i = buf.indexOf(UNDO_PREFIX, stop, 'latin1');
  }
  return out;
}

/**
 * Builds a plan whose undo record is written as `recLen` bytes at final offset `recFileOff`: the record
 * gets the edited file's hash (record zeroed), the result is verified against the original, and the
 * stored record is proven to restore it. Returns `{ retry }` when the record needs more than `recLen`.
 */
export function sealRecord(plan: Plan, name: string, origHash: string, recFileOff: number, recLen: number, file: string): Uint8Array | { retry: number } {
  const rec = recordFor(plan, name, origHash);
  if (encodeRecord(rec, recLen) === undefined) return { retry: encodeRecord(rec)!.length };
  const result = plan.build();
  rec.e = sha256(result, { off: recFileOff, len: recLen });
  result.set(Buffer.from(encodeRecord(rec, recLen)!, 'latin1'), recFileOff);
  // The record must bring back the original exactly, or we do not write anything.
  checkEdit(plan.orig, result, file, plan);
  const stored = decodeRecord(Buffer.from(result.subarray(recFileOff, recFileOff + recLen)).toString('latin1'));
  if (!stored || stored.e !== rec.e || !recordRestores(stored, plan, result)) throw new MambapatchError(`internal error: the undo record for ${name} does not restore the original`, { file });
  return result;
}

/** Calls `attempt` with growing record lengths until the record fits. */
export function withRecordLength<T extends object>(file: string, attempt: (recLen: number) => T | { retry: number }): T {
  let recLen = 200;
  for (let i = 0; i < 6; i++) {
    const r = attempt(recLen);
    if (!('retry' in r)) return r;
    recLen = r.retry + 8;
  }
  throw new MambapatchError('internal error: the undo record did not converge', { file });
}

/**
 * The original bytes, when `found` (a record in `data`) still matches the edited file and restores an
 * image with the recorded hash; undefined when the file changed since the edit.
 */
export function exactRestore(data: Uint8Array, found: { off: number; len: number; rec: UndoRecord }): Uint8Array | undefined {
  if (sha256(data, { off: found.off, len: found.len }) !== found.rec.e) return undefined;
  const orig = applyRecord(data, found.rec);
  if (!orig || sha256(orig) !== found.rec.h) return undefined;
  markVerified(orig); // the hash-checked original
  return orig;
}
