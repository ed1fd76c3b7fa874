/**
 * The safe permission fixes: chgrp to the prefix's group and chmod of group bits, setgid and sticky.
 * Rendered as the exact shell commands, merged per path, and applied with the same system calls.
 */
import * as fs from 'node:fs';
import { shArg } from '../shell.js';
import { groupArg } from './context.js';
import type { FixAction } from './types.js';
import { walkDirs } from './walk.js';

/** `chmod` symbolic mode for bits to add and remove: g+ws, -t, g+w,-t. */
export function symbolicMode(add: number, remove: number): string {
  const g = (bits: number) =>
    (bits & 0o040 ? 'r' : '') + (bits & 0o020 ? 'w' : '') + (bits & 0o010 ? 'x' : '') + (bits & 0o2000 ? 's' : '');
  const parts: string[] = [];
  if (g(add)) parts.push(`g+${g(add)}`);
  if (g(remove)) parts.push(`g-${g(remove)}`);
  if (add & 0o1000) parts.push('+t');
  if (remove & 0o1000) parts.push('-t');
  return parts.join(',');
}

/** One action per path and kind: chgrp once, chmod with the union of its bits, each tree once. */
export function mergeActions(actions: FixAction[]): FixAction[] {
  const chgrp = new Map<string, FixAction>();
  const chmod = new Map<string, { add: number; remove: number }>();
  const trees = new Map<string, FixAction>();
  for (const a of actions) {
    if (a.op === 'chgrp') chgrp.set(a.path, a);
    else if (a.op === 'tree-dirs') trees.set(a.path, a);
    else {
      const m = chmod.get(a.path) ?? { add: 0, remove: 0 };
      chmod.set(a.path, { add: m.add | a.add, remove: m.remove | a.remove });
    }
  }
  return [...chgrp.values(), ...[...chmod].map(([path, m]): FixAction => ({ path, op: 'chmod', ...m })), ...trees.values()];
}

const AT = '\0'; // where a command's paths go

/**
 * Shell commands, one per distinct change, each naming all its paths: `chgrp g 'a' 'b' && chmod g+w 'a'`.
 * A tree is two finds that change only the directories lacking the group or the bits (neither find nor
 * applyTree follows a symlink).
 */
export function renderActions(actions: FixAction[]): string {
  const groups = new Map<string, string[]>();
  const add = (cmd: string, p: string) => groups.set(cmd, [...(groups.get(cmd) ?? []), p]);
  for (const a of mergeActions(actions)) {
    if (a.op === 'tree-dirs') {
      const g = shArg(groupArg(a.gid));
      add(`find ${AT} -type d ! -group ${g} -exec chgrp ${g} {} +`, a.path);
      add(`find ${AT} -type d ! -perm -${a.add.toString(8)} -exec chmod ${symbolicMode(a.add, 0)} {} +`, a.path);
    } else add(a.op === 'chgrp' ? `chgrp ${shArg(groupArg(a.gid))} ${AT}` : `chmod ${symbolicMode(a.add, a.remove)} ${AT}`, a.path);
  }
  return [...groups].map(([cmd, paths]) => cmd.replace(AT, paths.map(shArg).join(' '))).join(' && ');
}

export interface FixOutcome {
  action: FixAction;
  command: string;
  result: 'done' | 'skipped' | 'failed';
  why?: string;
  /** For a tree: the directories left alone because another user owns them (the first 100). */
  skipped?: string[];
}

const notYours = (uid: number) => `owned by uid ${uid}: only root or its owner can change it`;

/** The missing group and bits of every directory in a tree; another user's directories are left for root. */
function applyTree(action: Extract<FixAction, { op: 'tree-dirs' }>, uid: number, command: string): FixOutcome {
  const skipped: string[] = [];
  const failed: string[] = [];
  walkDirs(action.path, (dir, st) => {
    const missing = action.add & ~st.mode;
    if (st.gid === action.gid && !missing) return;
    if (uid !== 0 && st.uid !== uid) return void skipped.push(`${dir} (uid ${st.uid})`);
    try {
      if (st.gid !== action.gid) fs.chownSync(dir, -1, action.gid);
      if (missing) fs.chmodSync(dir, (fs.statSync(dir).mode & 0o7777) | action.add);
    } catch (e) {
      failed.push(`${dir}: ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
  });
  const list = (xs: string[]) => `${xs.slice(0, 3).join(', ')}${xs.length > 3 ? `, and ${xs.length - 3} more` : ''}`;
  if (failed.length) return { action, command, result: 'failed', why: `${failed.length} director(ies) failed: ${list(failed)}` };
  if (skipped.length) {
    const why = `${skipped.length} director(ies) of other users left alone (only root or their owner can change them): ${list(skipped)}`;
    return { action, command, result: 'skipped', why, skipped: skipped.slice(0, 100) };
  }
  return { action, command, result: 'done' };
}

/**
 * Applies merged actions as the invoking user. A file someone else owns can only be changed by root:
 * it is skipped with the reason rather than attempted.
 */
export function applyActions(actions: FixAction[], uid: number): FixOutcome[] {
  return mergeActions(actions).map((action) => {
    const command = renderActions([action]);
    if (action.op === 'tree-dirs') return applyTree(action, uid, command);
    try {
      const st = fs.statSync(action.path);
      if (uid !== 0 && st.uid !== uid) return { action, command, result: 'skipped', why: notYours(st.uid) };
      if (action.op === 'chgrp') fs.chownSync(action.path, -1, action.gid);
      else {
        // Read the mode again: a chgrp just before may have cleared set-id bits.
        const mode = fs.statSync(action.path).mode & 0o7777;
        fs.chmodSync(action.path, (mode | action.add) & ~action.remove);
      }
      return { action, command, result: 'done' };
    } catch (e) {
      return { action, command, result: 'failed', why: (e as Error).message };
    }
  });
}
