/**
 * The ELF engine: read an ELF file's dynamic information, add or remove one DT_NEEDED entry with the
 * fewest changed bytes, verify the result, and write it atomically.
 */
export { readElf, type ElfInfo } from './info.js';
export type { EditResult, AddOptions, RemoveOptions } from './result.js';
export { addNeeded } from './add.js';
export { removeNeeded } from './remove.js';
export { editElfFile, type EditFileOptions } from './file.js';
export { verifyEdit } from './verify.js';
