/** The result of one edit, as returned by addNeeded/removeNeeded and rendered by the CLI. */
export interface EditResult {
  changed: boolean;
  /** The edited file (the input itself when nothing changed). */
  data: Uint8Array;
  message: string;
  /** New file size minus old file size. */
  bytesAdded: number;
  /** Bytes of the original file that now differ. */
  bytesChanged: number;
  /** How the edit was made: A (in place), B (moved .dynstr), C (new .dynamic), D (B or C with a new PT_LOAD), undo (original restored), remove (entry deleted in place). */
  tier?: string;
  /** Where the moved tables went (tiers B-D). */
  detail?: string;
}

export interface AddOptions {
  /** Insert before every other DT_NEEDED (interposition); default: after the last one. */
  first?: boolean;
  /** File name for messages. */
  file?: string;
}

export interface RemoveOptions {
  file?: string;
}
