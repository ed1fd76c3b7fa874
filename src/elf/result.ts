/** The result of one edit, as returned by addNeeded/removeNeeded and rendered by the CLI. */
import type { ElfFile } from './parse.js';
import type { Output, Plan, Take } from './plan.js';

/** Original bytes that sit at another file offset after the edit (addresses unchanged). */
export interface MovedRange {
  from: number;
  to: number;
  length: number;
}

/** What an edit did, in numbers and words. */
export interface EditReport {
  changed: boolean;
  message: string;
  /** New file size minus old file size. */
  bytesAdded: number;
  /** Bytes of the original file that now differ at their own offset. */
  bytesChanged: number;
  /** Original bytes now at another offset (the non-loaded tail or later segments shifted by an insertion). */
  bytesMoved: number;
  moved: MovedRange[];
  /** How the edit was made: A (in place), B (moved .dynstr), C (new .dynamic), D (B or C with a new PT_LOAD), undo (original restored), remove (entry deleted in place). */
  tier?: string;
  /** What the tier did, in words ("moved .dynstr into page padding after a read-only segment"). */
  detail?: string;
}

/** An edit's figures: what every report carries besides its words. */
export type Counts = Pick<EditReport, 'bytesChanged' | 'bytesAdded' | 'bytesMoved' | 'moved'>;

/**
 * An edit's figures in words, as every report's message gives them: "(N bytes changed in place, M added
 * (or removed), K moved [from, end) → to ...)". `extra` goes inside the parentheses, after the figures.
 */
export function figures(c: Counts, extra = ''): string {
  const size = c.bytesAdded < 0 ? `${-c.bytesAdded} removed` : `${c.bytesAdded} added`;
  const ranges = c.moved.map((m) => ` [${m.from}, ${m.from + m.length}) → ${m.to}`).join('');
  return `(${c.bytesChanged} bytes changed in place, ${size}, ${c.bytesMoved} moved${ranges}${extra})`;
}

export interface EditResult extends EditReport {
  /** The edited file (the input itself when nothing changed). */
  data: Uint8Array;
}

/** What running an edit found: `exact` outputs are the hash-checked original (no structural check). */
export interface RunResult {
  report: EditReport;
  exact: boolean;
  plan?: Plan;
  /** The DT_NEEDED list the output must read back as. */
  expectNeeded?: string[];
  /** A check that must pass on the output read back. */
  check?: (out: ElfFile) => void;
}

/**
 * An edit planned from the headers and tables, not yet written: `run` produces the whole output in one
 * pass (chunks in buffers from `take`) and returns what it found. Outputs that are not `exact` are
 * verified against the input.
 */
export interface PreparedEdit {
  report: EditReport;
  run?: (take: Take) => Output<RunResult>;
}

export const unchanged = (message: string): EditReport => ({ changed: false, message, bytesAdded: 0, bytesChanged: 0, bytesMoved: 0, moved: [] });

export interface AddOptions {
  /** Insert before every other DT_NEEDED (interposition); default: after the last one. */
  first?: boolean;
  /** File name for messages. */
  file?: string;
}

export interface RemoveOptions {
  file?: string;
}
