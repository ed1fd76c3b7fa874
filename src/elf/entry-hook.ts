/**
 * The entry hook: one new R+X PT_LOAD holding a self-contained, relocation-free code blob (see
 * hook-header.ts), with e_entry pointing at the blob's entry code. The blob finds the original entry
 * PC-relatively (its header's delta) and jumps there with the stack and registers as it found them. It is
 * how a fully static executable, which can load no library, gets the supervisor.
 *
 * The segment holds the blob followed by an undo record (the same record add-needed writes into .dynstr),
 * so removing the hook gives back the original file byte for byte. Placement reuses add-needed's layout:
 * the segment goes after the loaded data, its program header into a PT_NULL entry, free bytes after the
 * table, or a moved table that stays at image base + e_phoff (AT_PHDR on old kernels and qemu-user).
 */
import { MambapatchError } from '../errors.js';
import { guarded } from './guard.js';
import { EDITABLE_ARCHES, ET, PF, PT, SHF } from './constants.js';
import { findEntryHook, loadAt, parseHookHeader, withDelta, type HookHeader } from './hook-header.js';
import { describe } from './info.js';
import { Layout } from './layout.js';
import { parseElf, type ElfFile } from './parse.js';
import { Plan } from './plan.js';
import type { EditResult } from './result.js';
import { exactRestore, findRecords, sealRecord, sha256, withRecordLength } from './undo.js';
import { checkEdit } from './verify.js';

/** The undo record's name field for an entry hook. */
export const HOOK_RECORD_NAME = 'mambapatch-entry-hook';

const hex = (v: number): string => `0x${v.toString(16)}`;

/** Why the kernel-started program in `elf` cannot take an entry hook, or undefined. */
function refusal(elf: ElfFile, blob: HookHeader): string | undefined {
  const h = elf.header;
  if (h.type !== ET.EXEC && h.type !== ET.DYN) return `has ELF type ${h.type}, not an executable`;
  if (blob.arch && blob.arch !== h.arch) return `is for ${h.arch}, but the hook blob is for ${blob.arch}`;
  const info = describe(elf, { symbols: false });
  // ET_DYN without an interpreter: a static-pie (or a self-relocating executable) is started by the
  // kernel; a library (a SONAME, or needing others) is not.
  if (info.kind === 'library' && (info.soname || info.needed.length > 0 || h.entry === 0)) return 'is a shared library, not an executable';
  if (h.entry === 0) return 'has no entry point';
  const seg = loadAt(elf, h.entry);
  if (!seg || !(seg.flags & PF.X)) return `has its entry point ${hex(h.entry)} outside every executable segment`;
  const code = elf.shdrs.filter((s) => s.flags & SHF.ALLOC && s.flags & SHF.EXECINSTR && s.size > 0);
  if (code.length > 0 && !code.some((s) => h.entry >= s.addr && h.entry < s.addr + s.size)) {
    return `has its entry point ${hex(h.entry)} outside every code section (hooked or packed by another tool?)`;
  }
  const head = Buffer.from(elf.view.data.subarray(0, Math.min(elf.view.size, 4096)));
  if (head.includes('UPX!', 0, 'latin1')) return 'is packed with UPX (the unpacker would run before any hook); unpack it first';
  return undefined;
}

export interface HookOptions {
  file?: string;
}

/**
 * Adds the entry hook `blob` (a hook blob with delta 0, or a function giving the one for the file's
 * architecture) to the executable in `data`.
 */
export function addEntryHook(data: Uint8Array, blob: Uint8Array | ((arch: string) => Uint8Array), opts: HookOptions = {}): EditResult {
  return guarded(opts.file, 'cannot add the entry hook', () => addHook(data, blob, opts.file ?? 'input'));
}

function addHook(data: Uint8Array, blobFor: Uint8Array | ((arch: string) => Uint8Array), file: string): EditResult {
  const elf = parseElf(data, file);
  const { arch, bits, le } = elf.header;
  if (!EDITABLE_ARCHES.includes(arch) || bits !== 64) throw new MambapatchError(`refusing to hook: the file is for ${arch} (${bits}-bit); entry hooks exist for x86_64, aarch64 and ppc64le`, { file });
  const blob = typeof blobFor === 'function' ? blobFor(arch) : blobFor;
  const hdr = parseHookHeader(blob, le);
  if (!hdr || hdr.size !== blob.length) throw new MambapatchError('the hook blob is not a mambapatch hook blob (ABI 1)', { file });
  const existing = findEntryHook(elf);
  if (existing) {
    return { changed: false, data, message: `${file} already has the entry hook (${existing.header.id}); nothing changed`, bytesAdded: 0, bytesChanged: 0 };
  }
  const why = refusal(elf, hdr);
  if (why) throw new MambapatchError(`refusing to hook: the file ${why}`, { file });
  const origHash = sha256(data);
  const built = withRecordLength(file, (recLen) => {
    const plan = new Plan(elf);
    const layout = new Layout(plan, true);
    const region = layout.addLoad(blob.length + recLen + 1, PF.R | PF.X);
    if ('refused' in region) throw new MambapatchError(`cannot add the entry hook: ${region.refused}`, { file });
    plan.putNew(region.off, withDelta(blob, le, elf.header.entry - region.vaddr));
    plan.putWord(24, region.vaddr + hdr.entryOffset); // e_entry
    layout.writePhdrs();
    const result = sealRecord(plan, HOOK_RECORD_NAME, origHash, region.off + blob.length, recLen, file);
    return 'retry' in result ? result : { plan, layout, result, region };
  });
  const { plan, layout, result, region } = built;
  const after = parseElf(result, file);
  const hook = findEntryHook(after);
  const seg = hook && after.phdrs[hook.segment];
  if (!hook || hook.vaddr !== region.vaddr || hook.originalEntry !== elf.header.entry || !seg || seg.flags !== (PF.R | PF.X)) {
    throw new MambapatchError('the hooked file fails verification (the entry does not lead through the new segment to the original entry); nothing was written', { file });
  }
  const changed = plan.countChanged(result);
  const slot = layout.newLoad!.slot;
  const detail = `new R+X segment at ${hex(region.vaddr)} (${blob.length} bytes of code), program header ${SLOT_TEXT[slot]}`;
  return {
    changed: true,
    data: result,
    message: `added the entry hook to ${file} (${hdr.id}; ${changed} bytes changed, ${result.length - data.length} added; ${detail})`,
    bytesAdded: result.length - data.length,
    bytesChanged: changed,
    tier: 'entry-hook',
    detail,
  };
}

const SLOT_TEXT: Record<string, string> = {
  null: 'in a PT_NULL slot',
  grow: 'in free space after the table',
  cave: 'with the table moved into padding at the image base',
  gap: 'with the table moved into a page opened at the image base',
  move: 'with the table moved into the new segment',
};

/**
 * Removes the entry hook: the original bytes when the file is as the hook left it; otherwise (the file
 * changed since) only e_entry is restored and the unused segment stays.
 */
export function removeEntryHook(data: Uint8Array, opts: HookOptions = {}): EditResult {
  return guarded(opts.file, 'cannot remove the entry hook', () => removeHook(data, opts.file ?? 'input'));
}

function removeHook(data: Uint8Array, file: string): EditResult {
  const elf = parseElf(data, file);
  const hook = findEntryHook(elf);
  if (!hook) return { changed: false, data, message: `${file} has no mambapatch entry hook; nothing changed`, bytesAdded: 0, bytesChanged: 0 };
  const seg = elf.phdrs[hook.segment]!;
  const mine = findRecords(data, hook.offset + hook.header.size, seg.offset + seg.filesz)
    .filter((r) => r.rec.n === HOOK_RECORD_NAME)
    .at(-1);
  const orig = mine && exactRestore(data, mine);
  if (orig) {
    return {
      changed: true,
      data: orig,
      message: `removed the entry hook from ${file} (restored the original bytes: ${data.length - orig.length} bytes removed)`,
      bytesAdded: orig.length - data.length,
      bytesChanged: 0,
      tier: 'undo',
    };
  }
  const target = loadAt(elf, hook.originalEntry);
  if (!target || !(target.flags & PF.X)) {
    throw new MambapatchError(`the hook's original entry ${hex(hook.originalEntry)} is not in an executable segment; refusing to guess`, { file });
  }
  const plan = new Plan(elf);
  plan.putWord(24, hook.originalEntry);
  const result = plan.build();
  checkEdit(data, result, file, plan);
  return {
    changed: true,
    data: result,
    message: `removed the entry hook from ${file} (the file changed since it was hooked, so only the entry point was restored; the unused segment stays)`,
    bytesAdded: 0,
    bytesChanged: plan.countChanged(result),
    tier: 'remove',
  };
}
