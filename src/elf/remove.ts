import type { RemoveOptions, EditResult } from './result.js';
import { MambapatchError } from '../errors.js';
export function removeNeeded(data: Uint8Array, name: string, opts: RemoveOptions = {}): EditResult {
  throw new MambapatchError(`removing ${name}: not implemented yet`, { file: opts.file });
}
