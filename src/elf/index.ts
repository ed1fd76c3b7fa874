/**
 * The ELF engine: read an ELF file's dynamic information, add or remove one DT_NEEDED entry with the
 * fewest changed bytes, verify the result, and write it atomically.
 */
export { readElf, readElfFile, type ElfInfo } from './info.js';
export type { EditResult, EditReport, PreparedEdit, AddOptions, RemoveOptions } from './result.js';
export { addNeeded, prepareAdd } from './add.js';
export { removeNeeded, prepareRemove } from './remove.js';
export { editElfFile, editElfFileAsync, editInMemory, type EditFileOptions, type Prepare } from './file.js';
export { addEntryHook, removeEntryHook, prepareEntryHook, prepareRemoveEntryHook } from './entry-hook.js';
export { findEntryHook, parseHookHeader, type HookHeader } from './hook-header.js';
export { verifyEdit } from './verify.js';
