/**
 * The ELF engine: read an ELF file's dynamic information, add or remove one DT_NEEDED entry with the
 * fewest changed bytes, verify the result, and write it atomically.
 */
export { readElf, type ElfInfo } from './info.js';
export type { EditResult, AddOptions, RemoveOptions } from './result.js';
export { addNeeded } from './add.js';
export { removeNeeded } from './remove.js';
export { addEntryHook, removeEntryHook } from './entry-hook.js';
export { findEntryHook, parseHookHeader, type HookHeader } from './hook-header.js';
export { editElfFile, type EditFileOptions } from './file.js';
export { verifyEdit } from './verify.js';
