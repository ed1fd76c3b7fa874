/**
 * removeNeeded: undo our own edit exactly when we can, otherwise remove the entry and leave a valid file.
 *   1. The newest undo record for the name whose post-edit hash matches: restore the original bytes.
 *   2. Otherwise delete the entry in place (shift later entries up, zero the freed slot). For a tier-A
 *      edit this is the exact inverse.
 */
import { MambapatchError } from '../errors.js';
import { guarded } from './guard.js';
import { dynDelete } from './dynedit.js';
import { neededIndex, rawSlots, writeSlots } from './dynamic.js';
import { describe, neededOf } from './info.js';
import { parseElf, versionNeeds } from './parse.js';
import { Plan } from './plan.js';
import type { EditResult, RemoveOptions } from './result.js';
import { exactRestore, findRecords } from './undo.js';
import { checkEdit } from './verify.js';

export function removeNeeded(data: Uint8Array, name: string, opts: RemoveOptions = {}): EditResult {
  return guarded(opts.file, `cannot remove ${name}`, () => remove(data, name, opts));
}

function remove(data: Uint8Array, name: string, opts: RemoveOptions): EditResult {
  const file = opts.file ?? 'input';
  const elf = parseElf(data, file);
  const info = describe(elf, { symbols: false });
  if (!info.editable) throw new MambapatchError(`refusing to edit: the file ${info.refusal}`, { file });
  const index = neededIndex(elf, name);
  if (index < 0) return { changed: false, data, message: `${name} is not needed by ${file}; nothing changed`, bytesAdded: 0, bytesChanged: 0 };

  const t = elf.strtab!;
  const mine = findRecords(data, t.offset, t.offset + t.size).filter((r) => r.rec.n === name).at(-1);
  let note = '';
  if (mine) {
    const orig = exactRestore(data, mine);
    if (orig) {
      return {
        changed: true,
        data: orig,
        message: `removed ${name} from ${file} (restored the original bytes: ${data.length - orig.length} bytes removed)`,
        bytesAdded: orig.length - data.length,
        bytesChanged: 0,
        tier: 'undo',
      };
    }
    note = '; the file changed since mambapatch added it, so only the entry was removed';
  }

  const user = versionNeeds(elf).find((v) => v.file === name);
  if (user) throw new MambapatchError(`refusing to remove ${name}: symbol versions (${user.versions[0]?.name ?? '?'}) are required from it`, { file });
  const plan = new Plan(elf);
  writeSlots(plan, elf, dynDelete(elf, rawSlots(elf), index));
  const result = plan.build();
  checkEdit(data, result, file, plan);
  const expected = [...info.needed];
  expected.splice(expected.indexOf(name), 1);
  if (neededOf(result, file).join('\0') !== expected.join('\0')) {
    throw new MambapatchError('the edited file fails verification (DT_NEEDED does not read back as expected); nothing was written', { file });
  }
  const changed = plan.countChanged(result);
  return {
    changed: true,
    data: result,
    message: `removed ${name} from ${file} (${changed} bytes changed, 0 added${note})`,
    bytesAdded: 0,
    bytesChanged: changed,
    tier: 'remove',
  };
}
