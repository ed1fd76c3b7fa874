import type { AddOptions, EditResult } from './result.js';
import { MambapatchError } from '../errors.js';
export function addNeeded(data: Uint8Array, name: string, opts: AddOptions = {}): EditResult {
  throw new MambapatchError(`adding ${name}: not implemented yet`, { file: opts.file });
}
