/**
 * The verifier: structural invariants of an edited file, compared with the original so that quirks the
 * input already had are not blamed on the edit. An edit that introduces a problem is refused.
 */
import { MambapatchError } from '../errors.js';
import { alignDown, alignUp, isPow2 } from './bytes.js';
import { ADDRESS_TAGS, DT, PF, PT, SHF, SHT, maxPageSize } from './constants.js';
import { dynSections } from './dynamic.js';
import { DYN_SIZE, SYM_SIZE, SymWords, dynsymTable, liveEntries, parseElf, stringOffsets, vaddrToOffset, versionNeeds, type ElfFile, type Phdr } from './parse.js';
import type { Plan } from './plan.js';

export function problems(elf: ElfFile): Set<string> {
  const out = new Set<string>();
  const add = (s: string): void => void out.add(s);
  const run = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      add(`${what}: ${(e as Error).message}`);
    }
  };
  run('segments', () => segments(elf, add));
  run('dynamic', () => dynamicChecks(elf, add));
  run('strings', () => strings(elf, add));
  run('sections', () => sections(elf, add));
  return out;
}

const inLoad = (elf: ElfFile, p: { vaddr: number; filesz: number }): Phdr | undefined =>
  elf.phdrs.find((l) => l.type === PT.LOAD && p.vaddr >= l.vaddr && p.vaddr + p.filesz <= l.vaddr + l.filesz);

function segments(elf: ElfFile, add: (s: string) => void): void {
  const size = elf.view.size;
  const P = maxPageSize(elf.header.arch);
  const loads = elf.phdrs.filter((p) => p.type === PT.LOAD);
  loads.forEach((p, i) => {
    if (p.filesz > p.memsz) add(`PT_LOAD ${p.index}: filesz > memsz`);
    if (p.offset + p.filesz > size) add(`PT_LOAD ${p.index}: runs past the end of the file`);
    if (p.align > 1 && !isPow2(p.align)) add(`PT_LOAD ${p.index}: p_align is not a power of two`);
    if (p.align > 1 && (p.vaddr - p.offset) % p.align !== 0) add(`PT_LOAD ${p.index}: vaddr and offset disagree modulo p_align`);
    if (p.align < P) add(`PT_LOAD ${p.index}: p_align below the page size`);
    const prev = loads[i - 1];
    if (prev) {
      if (p.vaddr < prev.vaddr) add(`PT_LOAD ${p.index}: vaddr not ascending`);
      else if (alignDown(p.vaddr, P) < alignUp(prev.vaddr + prev.memsz, P)) add(`PT_LOAD ${p.index}: shares a page with PT_LOAD ${prev.index}`);
    }
  });
  const h = elf.header;
  const phdrIdx = elf.phdrs.findIndex((p) => p.type === PT.PHDR);
  if (phdrIdx >= 0) {
    const p = elf.phdrs[phdrIdx]!;
    if (elf.phdrs.some((q, i) => i < phdrIdx && (q.type === PT.LOAD || q.type === PT.DYNAMIC || q.type === PT.INTERP))) add('PT_PHDR: not ahead of LOAD/DYNAMIC/INTERP');
    if (!inLoad(elf, p)) add('PT_PHDR: not inside a PT_LOAD');
    if (p.offset !== h.phoff || p.filesz !== h.phnum * h.phentsize) add('PT_PHDR: does not cover the program-header table');
    const first = loads[0];
    if (first && (h.type === 2 || elf.phdrs.some((q) => q.type === PT.INTERP)) && p.vaddr - h.phoff !== first.vaddr - first.offset) {
      add('PT_PHDR: vaddr - e_phoff differs from the image base (AT_PHDR)');
    }
  }
  // Where glibc reads a library's program headers from when there is no PT_PHDR: the first LOAD whose
  // pages hold the table must hold it in its file image (past it, the mapping is zero-filled .bss).
  if (phdrIdx < 0 && h.phnum > 0) {
    const end = h.phoff + h.phnum * h.phentsize;
    const l = loads.find((q) => alignDown(q.offset, P) <= h.phoff && end <= alignUp(q.offset + q.filesz, P));
    if (l && (h.phoff < l.offset || end > l.offset + l.filesz)) add(`the program-header table: read from PT_LOAD ${l.index}'s pages but outside its file bytes`);
  }
  // A segment inside a LOAD's file image (PT_DYNAMIC, PT_TLS, PT_GNU_RELRO, ...) sits at the file offset of
  // its address there, empty ones too.
  for (const p of elf.phdrs) {
    if (p.type === PT.LOAD || p.type === PT.NULL || (p.offset === 0 && p.filesz === 0)) continue;
    const l = loads.find((q) => p.vaddr >= q.vaddr && p.vaddr + p.filesz <= q.vaddr + q.filesz);
    if (l && p.offset - l.offset !== p.vaddr - l.vaddr) add(`segment ${p.index} (type ${p.type}): offset and address disagree with PT_LOAD ${l.index}`);
  }
  for (const p of elf.phdrs) {
    if (p.type !== PT.INTERP && p.type !== PT.NOTE && p.type !== PT.GNU_PROPERTY) continue;
    if (!inLoad(elf, p)) add(`segment ${p.index} (type ${p.type}): not inside a PT_LOAD`);
    if (elf.shdrs.length && !elf.shdrs.some((s) => s.type !== SHT.NULL && s.offset === p.offset && s.addr === p.vaddr)) add(`segment ${p.index} (type ${p.type}): no section at its offset`);
  }
}

function dynamicChecks(elf: ElfFile, add: (s: string) => void): void {
  const d = elf.dynamic;
  if (!d) return;
  const p = d.phdr;
  const load = inLoad(elf, p);
  if (!load) add('PT_DYNAMIC: not inside a PT_LOAD');
  else if (!(load.flags & PF.W)) add('PT_DYNAMIC: in a read-only PT_LOAD');
  if (d.terminator < 0) add('PT_DYNAMIC: no DT_NULL terminator');
  if (p.memsz < p.filesz || p.filesz % DYN_SIZE(elf.header.bits === 64) !== 0) add('PT_DYNAMIC: bad size');
  const { dynamic, dynstr } = dynSections(elf);
  const anyDyn = elf.shdrs.find((s) => s.type === SHT.DYNAMIC);
  if (anyDyn && (!dynamic || dynamic.offset !== p.offset || dynamic.addr !== p.vaddr || dynamic.size !== p.filesz)) add('.dynamic section disagrees with PT_DYNAMIC');
  for (const e of liveEntries(elf)) {
    if (!ADDRESS_TAGS.includes(e.tag)) continue;
    if (vaddrToOffset(elf, e.val) === undefined && !elf.phdrs.some((l) => l.type === PT.LOAD && e.val >= l.vaddr && e.val < l.vaddr + l.memsz)) {
      add(`dynamic tag 0x${e.tag.toString(16)}: address 0x${e.val.toString(16)} not mapped`);
    }
  }
  const dynsymSec = elf.shdrs.find((s) => s.type === SHT.DYNSYM);
  if (dynsymSec) {
    const strSec = elf.shdrs[dynsymSec.link];
    if (strSec && elf.strtab && (strSec.addr !== elf.strtab.addr || strSec.size !== elf.strtab.size)) add('DT_STRTAB/DT_STRSZ disagree with the .dynstr section');
    if (!dynstr && elf.strtab && strSec) add('no .dynstr section at DT_STRTAB');
  }
  const sym = dynsymTable(elf);
  if (sym && elf.strtab) {
    const named = stringOffsets(elf, elf.strtab.offset, elf.strtab.size, '_DYNAMIC');
    // Names only (no record per symbol): the value is read for the few named _DYNAMIC.
    if (named.size > 0)
      elf.view.scanWords(sym.offset, sym.count, sym.entsize, (i, w, at) => {
        if (i > 0 && named.has(w[at]!) && SymWords.value(elf.view, w, at) !== p.vaddr) add('_DYNAMIC in .dynsym disagrees with PT_DYNAMIC');
      });
  }
  for (const st of elf.shdrs) {
    if (st.type !== SHT.SYMTAB) continue;
    const strs = elf.shdrs[st.link];
    if (!strs) continue;
    const named = stringOffsets(elf, strs.offset, strs.size, '_DYNAMIC');
    const v = elf.view;
    const size = SYM_SIZE(v.is64);
    v.scanWords(st.offset, Math.floor(st.size / size), size, (i, w, at) => {
      const name = w[at]!;
      if (i === 0 || name === 0 || name >= strs.size) return;
      const info = SymWords.info(v, w, at);
      const shndx = SymWords.shndx(v, w, at);
      const value = SymWords.value(v, w, at);
      if (named.has(name) && value !== p.vaddr) add('_DYNAMIC in .symtab disagrees with PT_DYNAMIC');
      if ((info & 0xf) === 3 && shndx > 0 && shndx < elf.shdrs.length) {
        const sec = elf.shdrs[shndx]!;
        if (sec.flags & SHF.ALLOC && (sec === dynstr || sec.type === SHT.DYNAMIC) && value !== sec.addr) add(`section symbol for ${sec.name} is stale`);
      }
    });
  }
}

function strings(elf: ElfFile, add: (s: string) => void): void {
  const t = elf.strtab;
  if (!t) return;
  if (!inLoad(elf, { vaddr: t.addr, filesz: t.size })) add('DT_STRTAB: not inside one PT_LOAD');
  if (t.size > 0 && elf.view.u8(t.offset + t.size - 1) !== 0) add('DT_STRTAB: does not end with NUL');
  for (const e of liveEntries(elf)) {
    if ((e.tag === DT.NEEDED || e.tag === DT.SONAME || e.tag === DT.RPATH || e.tag === DT.RUNPATH) && e.val >= t.size) {
      add(`dynamic tag ${e.tag}: string offset beyond DT_STRSZ`);
    }
  }
  const sym = dynsymTable(elf);
  // st_name is every entry's first word.
  if (sym) elf.view.scanWords(sym.offset, sym.count, sym.entsize, (i, w, at) => i > 0 && w[at]! >= t.size && add(`dynamic symbol ${i}: name beyond DT_STRSZ`));
  versionNeeds(elf);
}

function sections(elf: ElfFile, add: (s: string) => void): void {
  const alloc = elf.shdrs.filter((s) => s.type !== SHT.NULL && s.flags & SHF.ALLOC && s.size > 0);
  const loads = elf.phdrs.filter((p) => p.type === PT.LOAD);
  for (const s of alloc) {
    const nobits = s.type === SHT.NOBITS;
    const tls = (s.flags & 0x400) !== 0;
    if (tls && nobits) continue;
    const inside = loads.filter((l) => s.addr >= l.vaddr && s.addr + s.size <= l.vaddr + (nobits ? l.memsz : l.filesz));
    if (inside.length !== 1) add(`section ${s.name || s.index}: in ${inside.length} PT_LOADs`);
    else if (!nobits && s.offset - inside[0]!.offset !== s.addr - inside[0]!.vaddr) add(`section ${s.name || s.index}: offset and address disagree`);
  }
  const sorted = alloc.filter((s) => !(s.flags & 0x400 && s.type === SHT.NOBITS)).sort((a, b) => a.addr - b.addr);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (a.addr + a.size > b.addr) add(`sections ${a.name || a.index} and ${b.name || b.index} overlap`);
  }
}

function fail(file: string | undefined, reason: string): never {
  throw new MambapatchError(`the edited file fails verification (${reason}); nothing was written`, { file });
}

const verified = new WeakSet<Uint8Array>();
/** Marks an image as already checked against its input (or as the hash-checked original). */
export function markVerified(data: Uint8Array): void {
  verified.add(data);
}
export function isVerified(data: Uint8Array): boolean {
  return verified.has(data);
}

/** Structural comparison of an original and an edited image. */
export function verifyEdit(before: Uint8Array, after: Uint8Array, file?: string): void {
  // An exact restore is checked by its SHA-256 instead: the original may have quirks the edit did not.
  if (isVerified(after)) return;
  let b: ElfFile;
  try {
    b = parseElf(after, file);
  } catch (e) {
    fail(file, `cannot be read back: ${(e as Error).message}`);
  }
  verifyElf(parseElf(before, file), b, file);
}

/** The structural checks on parsed images (a file's headers and tables read back through positional reads). */
export function verifyElf(a: ElfFile, b: ElfFile, file?: string): void {
  const old = problems(a);
  for (const p of problems(b)) if (!old.has(p)) fail(file, p);
  const minAlign = (e: ElfFile): number => Math.min(...e.phdrs.filter((p) => p.type === PT.LOAD).map((p) => p.align));
  if (minAlign(b) < minAlign(a)) fail(file, 'the supported page size shrank');
  const wx = (e: ElfFile): number => e.phdrs.filter((p) => p.type === PT.LOAD && p.flags & PF.W && p.flags & PF.X).length;
  if (wx(b) > wx(a)) fail(file, 'a new writable and executable segment');
}

/** verifyEdit plus: every byte the plan did not write is unchanged (native comparisons of the gaps). */
export function checkEdit(before: Uint8Array, after: Uint8Array, file: string | undefined, plan: Plan): void {
  const B = Buffer.from(before.buffer, before.byteOffset, before.byteLength);
  const A = Buffer.from(after.buffer, after.byteOffset, after.byteLength);
  const cuts = new Set<number>([0, before.length]);
  if (plan.insert) cuts.add(plan.insert.at);
  const ranges = plan.writtenRanges();
  for (const r of ranges) {
    cuts.add(r.off);
    cuts.add(r.off + r.len);
  }
  const points = [...cuts].sort((x, y) => x - y);
  for (let i = 0; i + 1 < points.length; i++) {
    const s = points[i]!;
    const e = points[i + 1]!;
    if (ranges.some((r) => s >= r.off && e <= r.off + r.len)) continue;
    if (!B.subarray(s, e).equals(A.subarray(plan.map(s), plan.map(s) + (e - s)))) fail(file, `bytes ${s}..${e} changed unexpectedly`);
  }
  verifyEdit(before, after, file);
  markVerified(after);
}
