/**
 * The safe permission fixes: chgrp to the prefix's group and chmod of group bits, setgid and sticky.
 * Rendered as the exact shell commands, merged per path, and applied with the same system calls.
 */
import * as fs from 'node:fs';
import { shArg } from '../shell.js';
import { groupArg } from './context.js';
import type { FixAction } from './types.js';

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

/** One action per path and kind: chgrp once, chmod with the union of its bits. */
export function mergeActions(actions: FixAction[]): FixAction[] {
  const chgrp = new Map<string, FixAction>();
  const chmod = new Map<string, { add: number; remove: number }>();
  for (const a of actions) {
    if (a.op === 'chgrp') chgrp.set(a.path, a);
    else {
      const m = chmod.get(a.path) ?? { add: 0, remove: 0 };
      chmod.set(a.path, { add: m.add | a.add, remove: m.remove | a.remove });
    }
  }
  return [...chgrp.values(), ...[...chmod].map(([path, m]): FixAction => ({ path, op: 'chmod', ...m }))];
}

/** Shell commands, one per distinct change, each naming all its paths: `chgrp g 'a' 'b' && chmod g+w 'a'`. */
export function renderActions(actions: FixAction[]): string {
  const groups = new Map<string, string[]>();
  for (const a of mergeActions(actions)) {
    const cmd = a.op === 'chgrp' ? `chgrp ${shArg(groupArg(a.gid))}` : `chmod ${symbolicMode(a.add, a.remove)}`;
    groups.set(cmd, [...(groups.get(cmd) ?? []), a.path]);
  }
  return [...groups].map(([cmd, paths]) => `${cmd} ${paths.map(shArg).join(' ')}`).join(' && ');
}

export interface FixOutcome {
  action: FixAction;
  command: string;
  result: 'done' | 'skipped' | 'failed';
  why?: string;
}

/**
 * Applies merged actions as the invoking user. A file someone else owns can only be changed by root:
 * it is skipped with the reason rather than attempted.
 */
export function applyActions(actions: FixAction[], uid: number): FixOutcome[] {
  return mergeActions(actions).map((action) => {
    const command = renderActions([action]);
    try {
      const st = fs.statSync(action.path);
      if (uid !== 0 && st.uid !== uid) {
        return { action, command, result: 'skipped', why: `owned by uid ${st.uid}: only root or its owner can change it` };
      }
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
