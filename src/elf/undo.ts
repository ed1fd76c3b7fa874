/**
 * The undo record: one extra string in the relocated .dynstr (SHF_ALLOC, so strip keeps it) that lets
 * removeNeeded restore the original file byte for byte. It holds the library name, the original size and
 * SHA-256, the SHA-256 of the edited file with the record's own bytes zeroed, the original bytes of every
 * in-place change, the ranges that were zero, and the tail insertion (offset, length) if any.
 */
import { createHash } from 'node:crypto';
import type { Plan } from './plan.js';

export const UNDO_PREFIX = 'MAMBAPATCH-UNDO:1:';
const PAD = '.';

export interface UndoRecord {
  /** library name */
  n: string;
  /** original size */
  s: number;
  /** sha256 of the original */
  h: string;
  /** sha256 of the edited file with the record zeroed */
  e: string;
  /** original bytes of in-place changes: [offset, base64] */
  c: [number, string][];
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

/** The record body (hashes still empty) describing how to get from a plan's result back to the original. */
export function recordFor(plan: Plan, name: string, origHash: string): UndoRecord {
  const rec: UndoRecord = { n: name, s: plan.orig.length, h: origHash, e: '', c: [], z: [] };
  for (const r of plan.writtenRanges()) {
    const bytes = plan.orig.subarray(r.off, r.off + r.len);
    if (bytes.every((b) => b === 0)) rec.z.push([r.off, r.len]);
    else rec.c.push([r.off, Buffer.from(bytes).toString('base64')]);
  }
  if (plan.insert) rec.i = [plan.insert.at, plan.insert.len];
  return rec;
}

/** The record as a string of exactly `len` bytes (padded), or undefined when it does not fit. */
export function encodeRecord(rec: UndoRecord, len?: number): string | undefined {
  const s = UNDO_PREFIX + Buffer.from(JSON.stringify(rec)).toString('base64url');
  if (len === undefined) return s;
  return s.length > len ? undefined : s + PAD.repeat(len - s.length);
}

export function decodeRecord(text: string): UndoRecord | undefined {
  if (!text.startsWith(UNDO_PREFIX)) return undefined;
  try {
    let body = text.slice(UNDO_PREFIX.length);
    while (body.endsWith(PAD)) body = body.slice(0, -1);
    const r = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as UndoRecord;
    if (typeof r.n !== 'string' || typeof r.s !== 'number' || typeof r.h !== 'string' || typeof r.e !== 'string') return undefined;
    if (!Array.isArray(r.c) || !Array.isArray(r.z)) return undefined;
    return r;
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
  const out = buf === edited ? buf.slice(0, rec.s) : buf.subarray(0, rec.s);
  for (const [off, len] of rec.z) {
    if (!(off >= 0 && off + len <= out.length)) return undefined;
    out.fill(0, off, off + len);
  }
  for (const [off, b64] of rec.c) {
    const bytes = Buffer.from(b64, 'base64');
    if (!(off >= 0 && off + bytes.length <= out.length)) return undefined;
    out.set(bytes, off);
  }
  return out;
}

/**
 * Proves, without copying or hashing the image, that `rec` turns `edited` back into `orig`, given that the
 * bytes outside the written ranges are already known to be equal (the verifier's gap check): the record
 * covers every written range with the original bytes or a zero range, and the sizes add up.
 */
export function recordRestores(rec: UndoRecord, plan: Plan, edited: Uint8Array): boolean {
  const orig = plan.orig;
  if (rec.s !== orig.length) return false;
  if ((rec.i?.[1] ?? 0) !== (plan.insert?.len ?? 0) || (rec.i?.[0] ?? 0) !== (plan.insert?.at ?? 0)) return false;
  if (edited.length - (rec.i?.[1] ?? 0) < rec.s) return false;
  const covered = new Map<number, number>();
  for (const [off, len] of rec.z) {
    for (let i = off; i < off + len; i++) if (orig[i] !== 0) return false;
    covered.set(off, len);
  }
  for (const [off, b64] of rec.c) {
    const bytes = Buffer.from(b64, 'base64');
    if (!bytes.equals(orig.subarray(off, off + bytes.length))) return false;
    covered.set(off, bytes.length);
  }
  return plan.writtenRanges().every((r) => covered.get(r.off) === r.len);
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
