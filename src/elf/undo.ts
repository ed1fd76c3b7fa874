/**
 * The undo record: one extra string in the relocated .dynstr (SHF_ALLOC, so strip keeps it) that lets
 * removeNeeded restore the original file byte for byte. It holds the library name, the original size, the
 * SHA-256 of the original, a SHA-256 that covers what the edit wrote, the original bytes of every in-place
 * change, the ranges that were zero, and the tail insertion (offset, length) if any.
 *
 * Version 3 (written now) hashes the data once per edit: `h` is the SHA-256 of the original, computed while
 * the edit streams it; `e` covers only the edited file's own bytes (the in-place changes, the zero ranges
 * filled, the inserted and appended bytes; the record itself zeroed). Every other byte of the edited file is
 * an original byte at its own or shifted offset, so restoring and checking `h` covers it: a file changed
 * anywhere since the edit fails one of the two. Version 2 (releases up to 0.1.0) hashed the whole edited
 * file for `e`; it is still read and restored exactly.
 */
import { createHash } from 'node:crypto';
import { MambapatchError } from '../errors.js';
import type { ByteView } from './bytes.js';
import { RESET, RangeHasher, STREAM_CHUNK, mergeRanges, type Output, type Plan, type Range, type Take } from './plan.js';
import { figures, type Counts, type EditReport, type MovedRange, type PreparedEdit } from './result.js';

const PREFIX = 'MAMBAPATCH-UNDO:';
export const UNDO_PREFIX = `${PREFIX}3:`;
const PAD = '.';

export interface UndoRecord {
  /** record version: 2 (e hashes the whole edited file) or 3 (e hashes the edit's own bytes) */
  v: 2 | 3;
  /** library name */
  n: string;
  /** original size */
  s: number;
  /** sha256 of the original (hex) */
  h: string;
  /** sha256 of the edited file (v2) or of its recordRegions (v3), with the record zeroed (hex) */
  e: string;
  /** original bytes of in-place changes: [offset, bytes] */
  c: [number, Uint8Array][];
  /** original ranges that were all zero: [offset, length] */
  z: [number, number][];
  /** tail insertion: [original offset, length] */
  i?: [number, number];
}

/**
 * The record (hashes still empty) that turns a plan's result back into the original: zero ranges for
 * written ranges that were zero (caves), and the original bytes where the result differs elsewhere.
 */
export function recordFor(plan: Plan, name: string): UndoRecord {
  const rec: UndoRecord = { v: 3, n: name, s: plan.orig.size, h: '', e: '', c: [], z: [] };
  const o = plan.orig;
  for (const r of plan.writtenRanges()) {
    if (o.isZero(r.off, r.off + r.len)) {
      rec.z.push([r.off, r.len]);
      continue;
    }
    const was = o.bytes(r.off, r.len);
    const now = plan.after(r);
    let i = 0;
    while (i < r.len) {
      if (was[i] === now[i]) {
        i++;
        continue;
      }
      // A run of differences; gaps shorter than a chunk header are cheaper to include.
      let j = i + 1;
      let same = 0;
      for (; j < r.len && same < 4; j++) same = was[j] === now[j] ? same + 1 : 0;
      const end = j - same;
      rec.c.push([r.off + i, was.slice(i, end)]);
      i = end;
    }
  }
  if (plan.insert) rec.i = [plan.insert.at, plan.insert.len];
  return rec;
}

/**
 * The edited file's own bytes under a v3 record, in edited-file coordinates, sorted: the zero and changed
 * ranges (shifted past the insertion), the insertion, and everything after the original's shifted end.
 */
export function recordRegions(rec: UndoRecord, editedSize: number): Range[] {
  const [at, len] = rec.i ?? [rec.s, 0];
  const out: Range[] = [];
  const push = (off: number, n: number): void => {
    // An original range that straddles the insertion point maps to two edited ranges.
    if (off < at && off + n > at) {
      out.push({ off, len: at - off }, { off: at + len, len: off + n - at });
    } else out.push({ off: off >= at ? off + len : off, len: n });
  };
  for (const [off, n] of rec.z) push(off, n);
  for (const [off, b] of rec.c) push(off, b.length);
  if (len > 0) out.push({ off: at, len });
  if (editedSize > rec.s + len) out.push({ off: rec.s + len, len: editedSize - rec.s - len });
  return mergeRanges(out.filter((r) => r.len > 0));
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
  const s = `${PREFIX}${rec.v}:` + Buffer.from(b).toString('base64url');
  if (len === undefined) return s;
  return s.length > len ? undefined : s + PAD.repeat(len - s.length);
}

export function decodeRecord(text: string): UndoRecord | undefined {
  const v = text.startsWith(`${PREFIX}3:`) ? 3 : text.startsWith(`${PREFIX}2:`) ? 2 : undefined;
  if (!v) return undefined;
  let body = text.slice(`${PREFIX}${v}:`.length);
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
    const rec: UndoRecord = { v, n, s, h, e, c: [], z: [] };
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

/**
 * Proves from the plan alone that `rec` turns the result back into the original, given that the bytes
 * outside the written ranges are copied (the streaming writer): applied to each written range as the plan
 * leaves it, the record gives back the original bytes, and the sizes add up.
 */
export function recordRestores(rec: UndoRecord, plan: Plan): boolean {
  const orig = plan.orig;
  if (rec.s !== orig.size) return false;
  if ((rec.i?.[1] ?? 0) !== (plan.insert?.len ?? 0) || (rec.i?.[0] ?? 0) !== (plan.insert?.at ?? 0)) return false;
  if (plan.size - (rec.i?.[1] ?? 0) < rec.s) return false;
  return plan.writtenRanges().every((r) => {
    const scratch = plan.after(r);
    const put = (off: number, bytes: Uint8Array): void => {
      for (let k = 0; k < bytes.length; k++) {
        const i = off + k - r.off;
        if (i >= 0 && i < r.len) scratch[i] = bytes[k]!;
      }
    };
    for (const [off, len] of rec.z) if (off < r.off + r.len && off + len > r.off) put(off, new Uint8Array(len));
    for (const [off, bytes] of rec.c) put(off, bytes);
    return orig.equals(r.off, scratch);
  });
}

/** Every record in a string table region, in table order: [file offset, length, record]. */
export function findRecords(view: ByteView, start: number, end: number): FoundRecord[] {
  const out: FoundRecord[] = [];
  const needle = Buffer.from(PREFIX, 'latin1');
  end = Math.min(end, view.size);
  let i = view.indexOf(needle, start, end);
  while (i >= 0) {
    const nul = view.indexOf(0, i, end);
    const stop = nul < 0 ? end : nul;
    if (i === start || view.u8(i - 1) === 0) {
      const rec = decodeRecord(Buffer.from(view.bytes(i, stop - i)).toString('latin1'));
      if (rec) out.push({ off: i, len: stop - i, rec });
    }
    i = view.indexOf(needle, stop, end);
  }
  return out;
}

/** SHA-256 of `ranges` of the file (positional reads), with `zero` read as zeros. */
export function hashRanges(view: ByteView, ranges: Range[], zero: Range): string {
  const hasher = new RangeHasher(ranges, createHash('sha256'), zero);
  const buf = Buffer.alloc(STREAM_CHUNK);
  for (const r of ranges) {
    if (r.off + r.len > view.size) return '';
    for (let off = r.off; off < r.off + r.len; ) {
      const n = Math.min(buf.length, r.off + r.len - off);
      view.src.read(buf, n, off);
      hasher.feed(buf.subarray(0, n), off);
      off += n;
    }
  }
  return hasher.hash.digest('hex');
}

/**
 * The original that `rec` describes, streamed out of the edited file (one pass, fixed-size chunks); returns
 * whether it is exact: the SHA-256 of what was produced is `h`, and for a v2 record the SHA-256 of the
 * whole edited file (record zeroed) is `e` (a v3 record's `e` is checked before, with hashRanges).
 */
export function* restore(view: ByteView, rec: UndoRecord, recRange: Range, take: Take): Output<boolean> {
  const [at, len] = rec.i ?? [rec.s, 0];
  if (!(at >= 0 && len >= 0 && at <= rec.s && rec.s + len <= view.size)) return false;
  const out = createHash('sha256');
  const whole = rec.v === 2 ? new RangeHasher([{ off: 0, len: view.size }], createHash('sha256'), recRange) : undefined;
  const overlays: { off: number; bytes: Uint8Array }[] = [...rec.z.map(([off, n]) => ({ off, bytes: new Uint8Array(n) })), ...rec.c.map(([off, bytes]) => ({ off, bytes }))];
  if (overlays.some((o) => o.off < 0 || o.off + o.bytes.length > rec.s)) return false;
  const total = whole ? view.size : rec.s + len;
  for (let q = 0; q < total; q += STREAM_CHUNK) {
    const n = Math.min(STREAM_CHUNK, total - q);
    const chunk = take(n);
    view.src.read(chunk, n, q);
    whole?.feed(chunk, q);
    // The parts of this input chunk that are original bytes: before the insertion, and after it up to the original size.
    for (const [s, e, shift] of [[q, Math.min(q + n, at), 0], [Math.max(q, at + len), Math.min(q + n, rec.s + len), len]] as const) {
      if (s >= e) continue;
      const piece = chunk.subarray(s - q, e - q);
      const o0 = s - shift;
      for (const o of overlays) {
        const a = Math.max(o.off, o0);
        const b = Math.min(o.off + o.bytes.length, o0 + piece.length);
        if (a < b) piece.set(o.bytes.subarray(a - o.off, b - o.off), a - o0);
      }
      out.update(piece);
      yield { buf: piece, off: o0 };
    }
  }
  return out.digest('hex') === rec.h && (!whole || whole.hash.digest('hex') === rec.e);
}

/**
 * The undo record for a plan, written as `recLen` bytes at final offset `recFileOff`: checked to restore
 * the original from the plan alone, then a writer that streams the result, hashing the original as it is
 * read and the edit's own bytes as they are written, and writes the sealed record last. The writer returns
 * the edit's figures with the record in them (the plan's own count holds only its zeroed place). `{ retry }`
 * when the record needs more than `recLen` bytes.
 */
export function sealedWriter(plan: Plan, name: string, recFileOff: number, recLen: number, file: string): ((take: Take) => Output<Counts>) | { retry: number } {
  const rec = recordFor(plan, name);
  if (encodeRecord(rec, recLen) === undefined) return { retry: encodeRecord(rec)!.length };
  // The record must bring back the original exactly, or we do not write anything.
  if (!recordRestores(rec, plan)) throw new MambapatchError(`internal error: the undo record for ${name} does not restore the original`, { file });
  return function* (take) {
    const orig = createHash('sha256');
    const own = new RangeHasher(recordRegions(rec, plan.size), createHash('sha256'), { off: recFileOff, len: recLen });
    yield* plan.chunks(take, { input: orig, regions: own });
    rec.h = orig.digest('hex');
    rec.e = own.hash.digest('hex');
    const sealed = Buffer.from(encodeRecord(rec, recLen)!, 'latin1');
    yield { buf: sealed, off: recFileOff };
    const counts = plan.counts();
    // The record lies in one region: the original's bytes (a cave), or new bytes that count as added.
    const o = plan.origin(recFileOff);
    if (o === undefined || o + sealed.length > plan.orig.size) return counts;
    const was = plan.orig.bytes(o, sealed.length);
    const planned = plan.after({ off: o, len: sealed.length });
    for (let k = 0; k < sealed.length; k++) counts.bytesChanged += Number(sealed[k] !== was[k]) - Number(planned[k] !== was[k]);
    return counts;
  };
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

export interface FoundRecord {
  off: number;
  len: number;
  rec: UndoRecord;
}

/**
 * A restore to try for `found` (a record in the file), or undefined when it cannot be exact: a v3 record's
 * own-bytes hash is checked here with positional reads; the original's hash (and a v2 record's whole-file
 * hash) while the restore streams, which then reports whether it was exact.
 */
function exactRestore(view: ByteView, found: FoundRecord | undefined): ((take: Take) => Output<boolean>) | undefined {
  if (!found) return undefined;
  const range = { off: found.off, len: found.len };
  if (found.rec.v === 3 && hashRanges(view, recordRegions(found.rec, view.size), range) !== found.rec.e) return undefined;
  return (take) => restore(view, found.rec, range, take);
}

/** The edit a removal falls back to: planned in place, verified as any edit is. */
export interface Fallback {
  plan: Plan;
  report: EditReport;
  expectNeeded?: string[];
}

/**
 * A removal (`what`: "removed NAME from FILE"): the original bytes back when `found` restores exactly,
 * else `fallback()`, planned at once when there is no exact restore to try, or only when the restore
 * turns out stale while it streams (what it wrote is dropped first).
 */
export function removal(view: ByteView, found: FoundRecord | undefined, what: string, fallback: () => Fallback): PreparedEdit {
  const exact = exactRestore(view, found);
  const restored = exact && restoredReport(what, found!.rec, view);
  const planned = restored ? undefined : fallback();
  return {
    report: restored || planned!.report,
    run: function* (take) {
      if (exact) {
        if (yield* exact(take)) return { report: restored!, exact: true };
        yield RESET;
      }
      const f = planned ?? fallback();
      yield* f.plan.chunks(take);
      return { report: f.report, exact: false, plan: f.plan, expectNeeded: f.expectNeeded };
    },
  };
}

/**
 * What giving back the original of `rec` does: the added bytes go, the shifted tail moves back, and the
 * bytes under the record's overlays that differ from the original are set back in place (the mirror of
 * the edit's figures).
 */
function restoredReport(what: string, rec: UndoRecord, view: ByteView): EditReport {
  const [at, len] = rec.i ?? [rec.s, 0];
  const moved: MovedRange[] = at < rec.s ? [{ from: at + len, to: at, length: rec.s - at }] : [];
  let changed = 0;
  const count = (off: number, want: Uint8Array): void => {
    // An original range can straddle the insertion: its two parts sit apart in the edited file.
    for (const [s, e] of [[off, Math.min(off + want.length, at)], [Math.max(off, at), off + want.length]] as const) {
      if (s >= e) continue;
      const have = view.bytes(s >= at ? s + len : s, e - s);
      for (let k = 0; k < e - s; k++) if (have[k] !== want[s - off + k]) changed++;
    }
  };
  for (const [off, n] of rec.z) count(off, new Uint8Array(n));
  for (const [off, bytes] of rec.c) count(off, bytes);
  const counts = { bytesChanged: changed, bytesAdded: rec.s - view.size, bytesMoved: moved.reduce((n, m) => n + m.length, 0), moved };
  return { changed: true, message: `${what}: restored the original bytes ${figures(counts)}`, ...counts, tier: 'undo', detail: 'restored the original bytes' };
}
