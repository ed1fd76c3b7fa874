/**
 * Inserting and deleting one entry in a dynamic table given as raw slots (terminator and spares included).
 * Both keep the slot count and touch only the slots from the edit point to the terminator, so a delete
 * exactly reverses an insert (the terminator of an editable table is all zero).
 */
import { DT } from './constants.js';
import { liveEntries, type ElfFile } from './parse.js';

/**
 * Puts `entry` at the terminator (default: after every entry) or before the first DT_NEEDED (first),
 * shifting the entries in between down over the terminator slot. The caller guarantees a spare DT_NULL
 * after the terminator.
 */
export function dynInsert(elf: ElfFile, slots: Uint8Array[], entry: Uint8Array, first: boolean): Uint8Array[] {
  const live = liveEntries(elf);
  const firstNeeded = live.findIndex((e) => e.tag === DT.NEEDED);
  const term = live.length;
  const pos = first && firstNeeded >= 0 ? firstNeeded : term;
  return [...slots.slice(0, pos), entry, ...slots.slice(pos, term), ...slots.slice(term + 1)];
}

/** Removes live entry `index`, shifting the later live entries up and zeroing the freed slot. */
export function dynDelete(elf: ElfFile, slots: Uint8Array[], index: number): Uint8Array[] {
  const term = liveEntries(elf).length;
  return [...slots.slice(0, index), ...slots.slice(index + 1, term), new Uint8Array(elf.dynamic!.entsize), ...slots.slice(term)];
}
