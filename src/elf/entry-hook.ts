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
 * A file with section headers also gets a `.mambapatch.hook` section over the segment, so that the code
 * segment has its code section (eu-elflint) and GNU strip keeps it.
 */
import { MambapatchError } from '../errors.js';
import { EDITABLE_ARCHES, ET, PF, PT, SHF, SHT } from './constants.js';
import { findEntryHook, loadAt, parseHookHeader, withDelta, type HookHeader } from './hook-header.js';
import { describe } from './info.js';
import { Layout } from './layout.js';
import { editInMemory } from './file.js';
import type { ElfFile } from './parse.js';
import { Plan } from './plan.js';
import { figures, unchanged, type Counts, type EditReport, type EditResult, type PreparedEdit } from './result.js';
import { findRecords, removal, sealedWriter, withRecordLength, type Fallback } from './undo.js';

/** The undo record's name field for an entry hook. */
export const HOOK_RECORD_NAME = 'mambapatch-entry-hook';
/** The section that describes the new segment (files with section headers). */
export const HOOK_SECTION = '.mambapatch.hook';

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
  const head = Buffer.from(elf.view.bytes(0, Math.min(elf.view.size, 4096)));
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
  return editInMemory(data, (elf) => prepareEntryHook(elf, blob, opts), opts.file ?? 'input', 'cannot add the entry hook');
}

/** Plans adding the entry hook from the headers and tables of `elf`; nothing is written until `run`. */
export function prepareEntryHook(elf: ElfFile, blobFor: Uint8Array | ((arch: string) => Uint8Array), opts: HookOptions = {}): PreparedEdit {
  const file = opts.file ?? 'input';
  const { arch, bits, le } = elf.header;
  if (!EDITABLE_ARCHES.includes(arch) || bits !== 64) throw new MambapatchError(`refusing to hook: the file is for ${arch} (${bits}-bit); entry hooks exist for x86_64, aarch64 and ppc64le`, { file });
  const blob = typeof blobFor === 'function' ? blobFor(arch) : blobFor;
  const hdr = parseHookHeader(blob, le);
  if (!hdr || hdr.size !== blob.length) throw new MambapatchError('the hook blob is not a mambapatch hook blob (ABI 1)', { file });
  const existing = findEntryHook(elf);
  if (existing) return { report: unchanged(`${file} already has the entry hook (${existing.header.id}); nothing changed`) };
  const why = refusal(elf, hdr);
  if (why) throw new MambapatchError(`refusing to hook: the file ${why}`, { file });
  const { plan, layout, write, region } = withRecordLength(file, (recLen) => {
    const plan = new Plan(elf);
    const layout = new Layout(plan, true);
    const region = layout.addLoad(blob.length + recLen + 1, PF.R | PF.X);
    if ('refused' in region) throw new MambapatchError(`cannot add the entry hook: ${region.refused}`, { file });
    plan.putNew(region.off, withDelta(blob, le, elf.header.entry - region.vaddr));
    plan.putWord(24, region.vaddr + hdr.entryOffset); // e_entry
    layout.writePhdrs();
    layout.addSectionHeader(HOOK_SECTION, { type: SHT.PROGBITS, flags: SHF.ALLOC | SHF.EXECINSTR, addr: region.vaddr, offset: region.off, size: blob.length + recLen + 1, align: 16 });
    const write = sealedWriter(plan, HOOK_RECORD_NAME, region.off + blob.length, recLen, file);
    return 'retry' in write ? write : { plan, layout, write, region };
  });
  const detail = `new R+X segment at ${hex(region.vaddr)} (${blob.length} bytes of code), program header ${SLOT_TEXT[layout.newLoad!.slot]}`;
  const reportOf = (c: Counts): EditReport => ({ changed: true, message: `added the entry hook to ${file} (${hdr.id}): ${detail} ${figures(c)}`, ...c, tier: 'entry-hook', detail });
  return {
    // Final once the undo record is sealed, after the output streamed.
    report: reportOf(plan.counts()),
    run: function* (take) {
      return { report: reportOf(yield* write(take)), exact: false, plan, check: (after) => checkHook(after, region.vaddr, elf.header.entry, file) };
    },
  };
}

/** The hooked file's entry leads through the new R+X segment to the original entry. */
function checkHook(after: ElfFile, vaddr: number, originalEntry: number, file: string): void {
  const hook = findEntryHook(after);
  const seg = hook && after.phdrs[hook.segment];
  if (!hook || hook.vaddr !== vaddr || hook.originalEntry !== originalEntry || !seg || seg.flags !== (PF.R | PF.X)) {
    throw new MambapatchError('the hooked file fails verification (the entry does not lead through the new segment to the original entry); nothing was written', { file });
  }
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
  return editInMemory(data, (elf) => prepareRemoveEntryHook(elf, opts), opts.file ?? 'input', 'cannot remove the entry hook');
}

/** Plans removing the entry hook from the headers and tables of `elf`; nothing is written until `run`. */
export function prepareRemoveEntryHook(elf: ElfFile, opts: HookOptions = {}): PreparedEdit {
  const file = opts.file ?? 'input';
  const hook = findEntryHook(elf);
  if (!hook) return { report: unchanged(`${file} has no mambapatch entry hook; nothing changed`) };
  const seg = elf.phdrs[hook.segment]!;
  const mine = findRecords(elf.view, hook.offset + hook.header.size, seg.offset + seg.filesz)
    .filter((r) => r.rec.n === HOOK_RECORD_NAME)
    .at(-1);
  return removal(elf.view, mine, `removed the entry hook from ${file}`, (): Fallback => {
    const target = loadAt(elf, hook.originalEntry);
    if (!target || !(target.flags & PF.X)) {
      throw new MambapatchError(`the hook's original entry ${hex(hook.originalEntry)} is not in an executable segment; refusing to guess`, { file });
    }
    const plan = new Plan(elf);
    plan.putWord(24, hook.originalEntry);
    const counts = plan.counts();
    return {
      plan,
      report: {
        changed: true,
        message: `removed the entry hook from ${file}: only the entry point was restored (the file changed since it was hooked; the unused segment stays) ${figures(counts)}`,
        ...counts,
        tier: 'remove',
        detail: 'only the entry point was restored',
      },
    };
  });
}
