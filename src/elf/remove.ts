/**
 * removeNeeded: undo our own edit exactly when we can, otherwise remove the entry and leave a valid file.
 *   1. The newest undo record for the name whose hashes match: stream the original bytes back.
 *   2. Otherwise delete the entry in place (shift later entries up, zero the freed slot). For a tier-A
 *      edit this is the exact inverse.
 */
import { MambapatchError } from '../errors.js';
import { dynDelete } from './dynedit.js';
import { neededIndex, rawSlots, writeSlots } from './dynamic.js';
import { editInMemory } from './file.js';
import { describe } from './info.js';
import { versionNeeds, type ElfFile } from './parse.js';
import { Plan } from './plan.js';
import { figures, unchanged, type EditResult, type PreparedEdit, type RemoveOptions } from './result.js';
import { findRecords, removal, type Fallback } from './undo.js';

export function removeNeeded(data: Uint8Array, name: string, opts: RemoveOptions = {}): EditResult {
  return editInMemory(data, (elf) => prepareRemove(elf, name, opts), opts.file ?? 'input', `cannot remove ${name}`);
}

/** Plans removing `name` from the headers and tables of `elf`; nothing is written until `run`. */
export function prepareRemove(elf: ElfFile, name: string, opts: RemoveOptions = {}): PreparedEdit {
  const file = opts.file ?? 'input';
  const info = describe(elf, { symbols: false });
  if (!info.editable) throw new MambapatchError(`refusing to edit: the file ${info.refusal}`, { file });
  const index = neededIndex(elf, name);
  if (index < 0) return { report: unchanged(`${name} is not needed by ${file}; nothing changed`) };

  const t = elf.strtab!;
  const mine = findRecords(elf.view, t.offset, t.offset + t.size).filter((r) => r.rec.n === name).at(-1);
  const note = mine ? '; the file changed since mambapatch added it, so only the entry was removed' : '';
  const user = versionNeeds(elf).find((v) => v.file === name);
  const expectNeeded = info.needed.filter((_, i) => i !== info.needed.indexOf(name));
  // Without an exact restore, or when it turns out stale: the entry is still named in the table we
  // planned from, so delete it in place.
  return removal(elf.view, mine, `removed ${name} from ${file}`, (): Fallback => {
    if (user) throw new MambapatchError(`refusing to remove ${name}: symbol versions (${user.versions[0]?.name ?? '?'}) are required from it`, { file });
    const plan = new Plan(elf);
    writeSlots(plan, elf, dynDelete(elf, rawSlots(elf), index));
    const counts = plan.counts();
    return {
      plan,
      expectNeeded,
      report: {
        changed: true,
        message: `removed ${name} from ${file}: deleted the entry in place ${figures(counts, note)}`,
        ...counts,
        tier: 'remove',
        detail: 'deleted the entry in place',
      },
    };
  });
}
