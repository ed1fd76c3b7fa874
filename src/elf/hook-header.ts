/**
 * The header of an entry-hook blob (ABI v1), as shipped in `shims/<arch>/mambapatch-hook.bin` and as found
 * at the start of the segment `elf add-entry-hook` adds. Integers are in the target's byte order.
 *
 *   0..15   magic "MAMBAPATCH-HOOK\0"
 *   16      u32 ABI version (1)
 *   20      u32 offset of the entry code from the blob start
 *   24      i64 entry delta: original e_entry minus the address of blob byte 0 (written by the engine)
 *   32      u32 total blob size
 *   36      u32 reserved (0)
 *   40..103 NUL-padded ASCII id "mambapatch-hook version=<v> arch=<arch>"
 *
 * A hooked file is recognised by e_entry: it lies in a PT_LOAD at `entry offset` past such a header.
 */
import { PT } from './constants.js';
import { vaddrToOffset, type ElfFile, type Phdr } from './parse.js';

export const HOOK_MAGIC = 'MAMBAPATCH-HOOK\0';
export const HOOK_ABI = 1;
export const HOOK_HEADER_SIZE = 104;
export const HOOK_DELTA_OFFSET = 24;
export const HOOK_SIZE_OFFSET = 32;
/** Where in a blob its entry code may start at the latest. */
const MAX_ENTRY_OFFSET = 1 << 16;

export interface HookHeader {
  abi: number;
  entryOffset: number;
  /** Original entry minus blob start (0 in a shipped blob). */
  delta: bigint;
  size: number;
  /** The id string, e.g. "mambapatch-hook version=0.2.0 arch=x86_64". */
  id: string;
  version?: string;
  arch?: string;
}

/** Reads a hook header at `off`, or undefined when the bytes there are not one (wrong magic or sizes). */
export function parseHookHeader(data: Uint8Array, le: boolean, off = 0, limit = data.length, sizeLimit = limit - off): HookHeader | undefined {
  if (off < 0 || off + HOOK_HEADER_SIZE > limit || limit > data.length) return undefined;
  for (let i = 0; i < HOOK_MAGIC.length; i++) if (data[off + i] !== HOOK_MAGIC.charCodeAt(i)) return undefined;
  const dv = new DataView(data.buffer, data.byteOffset + off, HOOK_HEADER_SIZE);
  const abi = dv.getUint32(16, le);
  const entryOffset = dv.getUint32(20, le);
  const size = dv.getUint32(HOOK_SIZE_OFFSET, le);
  if (abi !== HOOK_ABI || size < HOOK_HEADER_SIZE || size > sizeLimit || entryOffset < HOOK_HEADER_SIZE || entryOffset >= Math.min(size, MAX_ENTRY_OFFSET)) return undefined;
  const raw = Buffer.from(data.subarray(off + 40, off + HOOK_HEADER_SIZE)).toString('latin1');
  const id = raw.slice(0, raw.includes('\0') ? raw.indexOf('\0') : raw.length);
  const field = (k: string): string | undefined => new RegExp(`(?:^| )${k}=(\\S+)`).exec(id)?.[1];
  return { abi, entryOffset, delta: dv.getBigInt64(HOOK_DELTA_OFFSET, le), size, id, version: field('version'), arch: field('arch') };
}

/** A copy of `blob` with its entry delta set. */
export function withDelta(blob: Uint8Array, le: boolean, delta: number): Uint8Array {
  const out = new Uint8Array(blob);
  new DataView(out.buffer).setBigInt64(HOOK_DELTA_OFFSET, BigInt(delta), le);
  return out;
}

export interface EntryHook {
  /** The blob's header, as found in the file. */
  header: HookHeader;
  /** Address and file offset of the blob's first byte. */
  vaddr: number;
  offset: number;
  /** Index of the PT_LOAD that holds it. */
  segment: number;
  /** The entry the blob jumps to. */
  originalEntry: number;
}

export function loadAt(elf: ElfFile, vaddr: number): Phdr | undefined {
  return elf.phdrs.find((p) => p.type === PT.LOAD && vaddr >= p.vaddr && vaddr < p.vaddr + p.filesz);
}

/** The mambapatch entry hook e_entry points at, if any. */
export function findEntryHook(elf: ElfFile): EntryHook | undefined {
  const entry = elf.header.entry;
  const seg = loadAt(elf, entry);
  const entryOff = vaddrToOffset(elf, entry);
  if (!seg || entryOff === undefined) return undefined;
  // The blob starts at or before the entry, inside the same segment: the last magic before the entry
  // (entry code sits within the first MAX_ENTRY_OFFSET bytes of a blob). Positional reads of that window.
  const lo = Math.max(seg.offset, entryOff - MAX_ENTRY_OFFSET);
  const near = Buffer.from(elf.view.bytes(lo, entryOff - lo));
  const rel = near.lastIndexOf(HOOK_MAGIC, undefined, 'latin1');
  if (rel < 0) return undefined;
  const at = lo + rel;
  const limit = Math.min(seg.offset + seg.filesz, elf.view.size);
  const header = at + HOOK_HEADER_SIZE <= limit ? parseHookHeader(elf.view.bytes(at, HOOK_HEADER_SIZE), elf.header.le, 0, HOOK_HEADER_SIZE, limit - at) : undefined;
  if (!header || at + header.entryOffset !== entryOff) return undefined;
  const vaddr = seg.vaddr + (at - seg.offset);
  const originalEntry = Number(BigInt(vaddr) + header.delta);
  return { header, vaddr, offset: at, segment: seg.index, originalEntry };
}
