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
import { Plan, RESET } from './plan.js';
import { unchanged, type EditReport, type EditResult, type PreparedEdit, type RemoveOptions } from './result.js';
import { exactRestore, findRecords } from './undo.js';

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
  const size = elf.view.size;
  const mine = findRecords(elf.view, t.offset, t.offset + t.size).filter((r) => r.rec.n === name).at(-1);
  const exact = exactRestore(elf.view, mine);
  const candidate = exact && mine;
  const note = mine ? '; the file changed since mambapatch added it, so only the entry was removed' : '';

  const user = versionNeeds(elf).find((v) => v.file === name);
  const inPlace = (): { plan: Plan; report: EditReport } => {
    if (user) throw new MambapatchError(`refusing to remove ${name}: symbol versions (${user.versions[0]?.name ?? '?'}) are required from it`, { file });
    const plan = new Plan(elf);
    writeSlots(plan, elf, dynDelete(elf, rawSlots(elf), index));
    const changed = plan.countChanged();
    return {
      plan,
      report: {
        changed: true,
        message: `removed ${name} from ${file}: deleted the entry in place (${changed} bytes changed in place, 0 added, 0 moved${note})`,
        bytesAdded: 0,
        bytesChanged: changed,
        bytesMoved: 0,
        moved: [],
        tier: 'remove',
        detail: 'deleted the entry in place',
      },
    };
  };
  const expectNeeded = info.needed.filter((_, i) => i !== info.needed.indexOf(name));
  const semantic = candidate ? undefined : inPlace();
  const exactReport = (rec: NonNullable<typeof candidate>['rec']): EditReport => ({
    changed: true,
    message: `removed ${name} from ${file}: restored the original bytes (${size - rec.s} bytes removed)`,
    bytesAdded: rec.s - size,
    bytesChanged: 0,
    bytesMoved: rec.i && rec.i[0] < rec.s ? rec.s - rec.i[0] : 0,
    moved: rec.i && rec.i[0] < rec.s ? [{ from: rec.i[0] + rec.i[1], to: rec.i[0], length: rec.s - rec.i[0] }] : [],
    tier: 'undo',
    detail: 'restored the original bytes',
  });
  return {
    report: candidate ? exactReport(candidate.rec) : semantic!.report,
    run: function* (take) {
      if (candidate) {
        if (yield* exact!(take)) return { report: exactReport(candidate.rec), exact: true };
        yield RESET;
      }
      // The entry is still named in the table we planned from: fall back to deleting it in place.
      const s = semantic ?? inPlace();
      yield* s.plan.chunks(take);
      return { report: s.report, exact: false, plan: s.plan, expectNeeded };
    },
  };
}
