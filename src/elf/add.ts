/**
 * addNeeded: one DT_NEEDED entry with the fewest changed bytes.
 *   A: a spare DT_NULL slot and an existing string: only the slot changes.
 *   B: a slot but no string: a copy of .dynstr (+ name + undo record) goes into a cave, the end of the
 *      last writable PT_LOAD, or a new PT_LOAD; .dynamic is edited in place.
 *   C: no slot: a new .dynamic (and .dynstr) in a writable PT_LOAD; the old bytes stay.
 *   D: B or C, where the tables needed a new PT_LOAD (program-header slot: a PT_NULL entry, free bytes
 *      after the table, or the table moved into the new segment).
 */
import { MambapatchError } from '../errors.js';
import { alignUp } from './bytes.js';
import { DT, PF } from './constants.js';
import { dynInsert } from './dynedit.js';
import { dynSections, encodeDyn, rawSlots, reusableString, updateSymbols, writeSlots } from './dynamic.js';
import { editInMemory } from './file.js';
import { describe } from './info.js';
import { Layout, type PhtSlot, type Region } from './layout.js';
import { liveEntries, type ElfFile } from './parse.js';
import { Plan, type Output, type Take } from './plan.js';
import { figures, unchanged, type AddOptions, type Counts, type EditReport, type EditResult, type PreparedEdit } from './result.js';
import { sealedWriter, withRecordLength } from './undo.js';

/** The largest .bss an executable's edit writes out as zeros instead of moving the program headers. */
const MAX_BSS_FILL = 256 << 20;

const PHT_SLOT_TEXT: Record<PhtSlot, string> = {
  null: 'from a PT_NULL slot',
  grow: 'in free space after the table',
  cave: 'table moved into padding at the image base',
  gap: 'table moved into a page opened at the image base',
  move: 'table moved into the new segment',
};

export function addNeeded(data: Uint8Array, name: string, opts: AddOptions = {}): EditResult {
  return editInMemory(data, (elf) => prepareAdd(elf, name, opts), opts.file ?? 'input', `cannot add ${name}`);
}

/** Plans adding `name` from the headers and tables of `elf`; nothing is written until `run`. */
export function prepareAdd(elf: ElfFile, name: string, opts: AddOptions = {}): PreparedEdit {
  const file = opts.file ?? 'input';
  if (name === '' || name.includes('\0')) throw new MambapatchError('library name must be non-empty and contain no NUL byte', { file });
  const info = describe(elf, { symbols: false });
  if (!info.editable) throw new MambapatchError(`refusing to edit: the file ${info.refusal}`, { file });
  if (info.needed.includes(name)) return { report: unchanged(`${name} is already needed by ${file}; nothing changed`) };
  const slot = hasSpareSlot(elf);
  const strOff = reusableString(elf, name);
  // Symbol versions already required from NAME (e.g. after `patchelf --remove-needed`): removing an
  // in-place entry again would be refused, so write an undo record (tier B) that restores exactly.
  const versioned = info.versionNeeds.some((v) => v.file === name);
  const built = slot && strOff !== undefined && !versioned ? tierA(elf, strOff, !!opts.first) : relocate(elf, name, strOff, !!opts.first, slot, file);
  const { plan } = built;
  const reportOf = (c: Counts): EditReport => ({ changed: true, message: `added ${name} to ${file}: ${built.how} ${figures(c)}`, ...c, tier: built.tier, detail: built.how });
  const expectNeeded = opts.first ? [name, ...info.needed] : [...info.needed, name];
  return {
    // Final once the undo record is sealed, after the output streamed.
    report: reportOf(plan.counts()),
    run: function* (take) {
      return { report: reportOf(yield* built.write(take)), exact: false, plan, expectNeeded };
    },
  };
}

interface Built {
  plan: Plan;
  tier: string;
  /** What the tier did, in words. */
  how: string;
  /** Streams the result (and fills in the undo record's hashes); returns the edit's figures. */
  write: (take: Take) => Output<Counts>;
}

/** The terminator is all zero and followed by another DT_NULL: write the new entry over it. */
function hasSpareSlot(elf: ElfFile): boolean {
  const d = elf.dynamic!;
  const t = d.terminator;
  if (t < 0 || t + 1 >= d.slots.length) return false;
  const term = d.slots[t]!;
  return term.val === 0 && d.slots[t + 1]!.tag === DT.NULL && elf.view.isZero(term.at, term.at + d.entsize);
}

function tierA(elf: ElfFile, strOff: number, first: boolean): Built {
  const plan = new Plan(elf);
  const slots = dynInsert(elf, rawSlots(elf), encodeDyn(elf, DT.NEEDED, strOff), first);
  writeSlots(plan, elf, slots);
  const how = 'wrote the entry into a spare dynamic slot, reusing a string already in .dynstr';
  return {
    plan,
    tier: 'A',
    how,
    write: function* (take) {
      yield* plan.chunks(take);
      return plan.counts();
    },
  };
}

function relocate(elf: ElfFile, name: string, strOff: number | undefined, first: boolean, slot: boolean, file: string): Built {
  return withRecordLength(file, (recLen) => layoutOnce(elf, name, strOff, first, slot, recLen, file));
}

function layoutOnce(
  elf: ElfFile,
  name: string,
  strOff: number | undefined,
  first: boolean,
  slot: boolean,
  recLen: number,
  file: string,
): Built | { retry: number } {
  const plan = new Plan(elf);
  const layout = new Layout(plan);
  const t = elf.strtab!;
  const nameBytes = Buffer.from(name + '\0', 'utf8');
  // A table that does not end in NUL would swallow the appended name.
  const lead = t.size > 0 && elf.view.u8(t.offset + t.size - 1) !== 0 ? 1 : 0;
  const nameOff = strOff ?? t.size + lead;
  const recOffInTable = t.size + lead + (strOff === undefined ? nameBytes.length : 0);
  const strLen = recOffInTable + recLen + 1;
  const live = liveEntries(elf);
  const entsize = elf.dynamic!.entsize;
  const dynLen = slot ? 0 : (live.length + 1 + 5) * entsize;

  // Placement: .dynstr in a cave if one fits; whatever is left at the end of the writable LOAD or a new one.
  let strRegion: Region | undefined = layout.cave(strLen);
  let dynRegion: Region | undefined;
  const restLen = (strRegion ? 0 : alignUp(strLen, 16)) + dynLen;
  if (restLen > 0) {
    // An executable whose program-header table would have to move pads the file to image base + vaddr
    // anyway: writing its .bss into the file costs no more and keeps the table (and strip) intact.
    let rest =
      layout.extendLastWritable(restLen) ??
      (layout.isExecutable && layout.phtSlot().slot === 'move' ? layout.extendLastWritable(restLen, MAX_BSS_FILL) : undefined);
    if (!rest) {
      const r = layout.addLoad(restLen, PF.R | (dynLen > 0 ? PF.W : 0));
      if ('refused' in r) throw new MambapatchError(`cannot add ${name}: ${r.refused}`, { file });
      rest = r;
    }
    if (!strRegion) strRegion = rest;
    if (dynLen > 0) dynRegion = { ...rest, off: rest.off + (strRegion === rest ? alignUp(strLen, 16) : 0), vaddr: rest.vaddr + (strRegion === rest ? alignUp(strLen, 16) : 0) };
  }
  const strAddr = strRegion!.vaddr;
  const { dynstr, dynamic } = dynSections(elf);
  const sectionSyms = new Map<number, number>();

  // .dynamic: in place (slot) or a new table.
  const needed = encodeDyn(elf, DT.NEEDED, nameOff);
  const retarget = (slots: Uint8Array[]): Uint8Array[] =>
    slots.map((raw, i) => {
      const tag = elf.dynamic!.slots[i]?.tag;
      if (i < live.length && tag === DT.STRTAB) return encodeDyn(elf, DT.STRTAB, strAddr);
      if (i < live.length && tag === DT.STRSZ) return encodeDyn(elf, DT.STRSZ, strLen);
      return raw;
    });
  if (slot) {
    writeSlots(plan, elf, dynInsert(elf, retarget(rawSlots(elf)), needed, first));
  } else {
    const entries = dynInsert(elf, [...retarget(rawSlots(elf).slice(0, live.length)), ...Array.from({ length: 6 }, () => new Uint8Array(entsize))], needed, first);
    const table = new Uint8Array(dynLen);
    entries.slice(0, dynLen / entsize).forEach((e, i) => table.set(e, i * entsize));
    plan.putNew(dynRegion!.off, table);
    const pd = layout.phdrs.find((p) => p.type === 2)!;
    Object.assign(pd, { offset: dynRegion!.off, vaddr: dynRegion!.vaddr, paddr: dynRegion!.vaddr, filesz: dynLen, memsz: dynLen });
    if (dynamic) {
      plan.putShdrPlacement(dynamic, { addr: dynRegion!.vaddr, offset: dynRegion!.off, size: dynLen });
      sectionSyms.set(dynamic.index, dynRegion!.vaddr);
    }
  }
  if (dynstr) {
    plan.putShdrPlacement(dynstr, { addr: strAddr, offset: strRegion!.off, size: strLen });
    sectionSyms.set(dynstr.index, strAddr);
  }
  updateSymbols(plan, elf, dynRegion?.vaddr, sectionSyms);
  layout.writePhdrs();

  // The new .dynstr: the old bytes (copied while streaming), the name, then room for the undo record
  // (written last, once its hashes are known).
  const strFileOff = strRegion!.off;
  plan.copy(strFileOff, t.offset, t.size, strRegion!.inPlace);
  const tail = new Uint8Array(strLen - t.size);
  if (strOff === undefined) tail.set(nameBytes, lead);
  if (strRegion!.inPlace) plan.put(strFileOff + t.size, tail);
  else plan.putNew(strFileOff + t.size, tail);

  const recFileOff = (strRegion!.inPlace ? plan.map(strRegion!.off) : strRegion!.off) + recOffInTable;
  const write = sealedWriter(plan, name, recFileOff, recLen, file);
  if ('retry' in write) return write;

  const tier = layout.newLoad ? 'D' : slot ? 'B' : 'C';
  const where = [`moved .dynstr ${REGION_TEXT[strRegion!.how]}`];
  if (dynRegion) where.push(`a new .dynamic ${REGION_TEXT[dynRegion.how]}`);
  if (layout.newLoad) where.push(`program header ${PHT_SLOT_TEXT[layout.newLoad.slot]}`);
  if (plan.insert && plan.insert.at < elf.view.size) where.push(`later file bytes shifted by ${plan.insert.len} (addresses unchanged)`);
  return { plan, tier, how: where.join('; '), write };
}

const REGION_TEXT: Record<Region['how'], string> = {
  cave: 'into page padding after a read-only segment',
  extend: 'to the end of the writable segment',
  'new-load': 'into a new segment',
  gap: 'into a page opened at the image base',
};
