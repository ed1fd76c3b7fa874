// The fuzz test's worker thread: runs the built ELF engine (dist/) on one mutated file per message, so the
// test can terminate it when a case hangs. Each case goes through what `elf add-needed` does (read, add,
// verify) and back (remove); the reply classifies the outcome.
import { parentPort, workerData } from 'node:worker_threads';

const { readElf, addNeeded, removeNeeded, verifyEdit } = await import(workerData.engine);
const { MambapatchError } = await import(workerData.errors);

// A MambapatchError that merely wraps another exception (its `cause`) is a bug hidden, not a clean refusal.
const clean = (e) => e instanceof MambapatchError && !(e.cause instanceof Error && !(e.cause instanceof MambapatchError));
// The error and the innermost engine frame (where to look).
const describeError = (e) => {
  const frames = String(e?.stack ?? '').split('\n').slice(1).map((l) => l.trim());
  const where = frames.find((l) => l.includes('/src/elf/')) ?? frames[0] ?? '';
  const wrapped = e instanceof MambapatchError && e.cause instanceof Error ? ` (a stray ${e.cause.constructor.name} wrapped as MambapatchError, thrown ${describeError(e.cause)})` : '';
  return `${e?.constructor?.name ?? typeof e}: ${String(e?.message ?? e).split('\n')[0]} ${where.replace(/^at .*\/dist\//, 'at dist/')}${wrapped}`;
};
const equal = (a, b) => a.length === b.length && Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length));

/**
 * One edit as `elf add-needed`/`remove-needed` make it (edit, then verify; like editElfFile, an exact
 * restore of the hash-checked original (tier 'undo') is not re-verified); null when cleanly refused.
 */
function edit(step, what, data, fn) {
  step.at = what;
  try {
    const r = fn();
    if (r.changed && r.tier !== 'undo') {
      step.at = `verifyEdit after ${what}`;
      verifyEdit(data, r.data, 'fuzz');
    }
    return r;
  } catch (e) {
    if (clean(e)) {
      step.refusal = String(e.message);
      return null;
    }
    throw e;
  }
}

/** An unchanged result must mean "nothing to do", with the very same bytes. */
function unchanged(r, data, nothingToDo, why) {
  if (!nothingToDo) return { outcome: 'bad', detail: why };
  return equal(r.data, data) ? { outcome: 'unchanged' } : { outcome: 'bad', detail: 'changed=false but different bytes' };
}

const sameList = (got, want, what) =>
  JSON.stringify(got) === JSON.stringify(want) ? null : { outcome: 'bad', detail: `needed after ${what} ${JSON.stringify(got)}, expected ${JSON.stringify(want)}` };

/**
 * remove-needed of `name` (the marker, added before the mutation): a clean refusal, "not needed" with the
 * bytes untouched, or a verified edit whose NEEDED list lost exactly that entry.
 */
function checkRemove(data, before, name, step) {
  const r = edit(step, 'removeNeeded', data, () => removeNeeded(data, name, { file: 'fuzz' }));
  if (!r) return { outcome: 'refused' };
  const had = before.needed.includes(name);
  if (!r.changed) return unchanged(r, data, !had, `remove ${name}: changed=false although it is needed`);
  if (!had) return { outcome: 'bad', detail: `remove ${name}: changed although it is not needed` };
  const want = [...before.needed];
  want.splice(want.indexOf(name), 1);
  step.at = 'readElf(removed)';
  return sameList(readElf(r.data, 'fuzz').needed, want, 'remove') ?? { outcome: 'removed' };
}

/** add-needed of `name`: a clean refusal, "already needed", or a verified edit that reverts exactly. */
function checkAdd(data, before, name, first, step) {
  const r = edit(step, 'addNeeded', data, () => addNeeded(data, name, { first, file: 'fuzz' }));
  if (!r) return { outcome: 'refused' };
  if (!r.changed) return unchanged(r, data, before.needed.includes(name), `unchanged but ${name} is not needed`);
  step.at = 'readElf(result)';
  const wrong = sameList(readElf(r.data, 'fuzz').needed, first ? [name, ...before.needed] : [...before.needed, name], 'add');
  if (wrong) return wrong;
  if (r.bytesAdded !== r.data.length - data.length) return { outcome: 'bad', detail: `bytesAdded ${r.bytesAdded} != ${r.data.length - data.length}` };
  // A clean refusal to revert is allowed (e.g. a tier-A entry whose name a corrupted verneed also names).
  const back = edit(step, 'removeNeeded(result)', r.data, () => removeNeeded(r.data, name, { file: 'fuzz' }));
  if (!back) return { outcome: 'revert-refused', detail: `${step.at}: ${step.refusal}` };
  if (!equal(back.data, data)) return { outcome: 'bad', detail: 'remove-needed after add-needed did not restore the input bytes' };
  return { outcome: 'verified' };
}

function check({ data, name, first, op }) {
  const step = { at: 'readElf' };
  try {
    let before;
    try {
      before = readElf(data, 'fuzz');
    } catch (e) {
      if (clean(e)) return { outcome: 'unreadable' };
      throw e;
    }
    return op === 'remove' ? checkRemove(data, before, name, step) : checkAdd(data, before, name, first, step);
  } catch (e) {
    return { outcome: 'bad', detail: `${step.at} threw ${describeError(e)}` };
  }
}

parentPort.on('message', (msg) => parentPort.postMessage({ i: msg.i, ...check(msg) }));
parentPort.postMessage({ ready: true });
