/** Turns a stray exception from hostile input into a one-line MambapatchError naming the file. */
import { MambapatchError } from '../errors.js';

export function guarded<T>(file: string | undefined, what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof MambapatchError) throw e;
    throw new MambapatchError(`${what}: inconsistent file (${(e as Error).message})`, { file, cause: e });
  }
}
