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
 * remove-needed of `name` (the marker, added before the mutation): a clean refusal, "not needed" with the
 * bytes untouched, or a verified edit whose NEEDED list lost exactly that entry.
 */
function checkRemove(data, before, name, step) {
  step.at = 'removeNeeded';
  let r;
  try {
    r = removeNeeded(data, name, { file: 'fuzz' });
    if (r.changed) {
      step.at = 'verifyEdit(remove)';
      verifyEdit(data, r.data, 'fuzz');
    }
  } catch (e) {
    if (clean(e)) return { outcome: 'refused' };
    throw e;
  }
  const had = before.needed.includes(name);
  if (!r.changed) {
    if (had) return { outcome: 'bad', detail: `remove ${name}: changed=false although it is needed` };
    return equal(r.data, data) ? { outcome: 'unchanged' } : { outcome: 'bad', detail: 'changed=false but different bytes' };
  }
  if (!had) return { outcome: 'bad', detail: `remove ${name}: changed although it is not needed` };
  step.at = 'readElf(removed)';
  const want = [...before.needed];
  want.splice(want.indexOf(name), 1);
  const got = readElf(r.data, 'fuzz').needed;
  if (JSON.stringify(got) !== JSON.stringify(want)) return { outcome: 'bad', detail: `needed after remove ${JSON.stringify(got)}, expected ${JSON.stringify(want)}` };
  return { outcome: 'removed' };
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
    if (op === 'remove') return checkRemove(data, before, name, step);
    step.at = 'addNeeded';
    let r;
    try {
      r = addNeeded(data, name, { first, file: 'fuzz' });
      if (r.changed) {
        step.at = 'verifyEdit';
        verifyEdit(data, r.data, 'fuzz');
      }
    } catch (e) {
      if (clean(e)) return { outcome: 'refused' };
      throw e;
    }
    if (!r.changed) {
      if (!before.needed.includes(name)) return { outcome: 'bad', detail: `unchanged but ${name} is not needed` };
      return { outcome: equal(r.data, data) ? 'unchanged' : 'bad', detail: 'changed=false but different bytes' };
    }
    step.at = 'readElf(result)';
    const after = readElf(r.data, 'fuzz');
    const want = first ? [name, ...before.needed] : [...before.needed, name];
    if (JSON.stringify(after.needed) !== JSON.stringify(want)) {
      return { outcome: 'bad', detail: `needed after add ${JSON.stringify(after.needed)}, expected ${JSON.stringify(want)}` };
    }
    if (r.bytesAdded !== r.data.length - data.length) return { outcome: 'bad', detail: `bytesAdded ${r.bytesAdded} != ${r.data.length - data.length}` };
    step.at = 'removeNeeded(result)';
    let back;
    try {
      back = removeNeeded(r.data, name, { file: 'fuzz' });
    } catch (e) {
      // A clean refusal is allowed (e.g. a tier-A entry whose name a corrupted file's verneed also names).
      if (clean(e)) return { outcome: 'revert-refused' };
      throw e;
    }
    if (!equal(back.data, data)) return { outcome: 'bad', detail: 'remove-needed after add-needed did not restore the input bytes' };
    return { outcome: 'verified', tier: r.tier };
  } catch (e) {
    return { outcome: 'bad', detail: `${step.at} threw ${describeError(e)}` };
  }
}

parentPort.on('message', (msg) => parentPort.postMessage({ i: msg.i, ...check(msg) }));
parentPort.postMessage({ ready: true });
