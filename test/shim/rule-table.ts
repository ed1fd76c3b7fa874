/**
 * The rule table of the shim's tests, shared with the supervisor's (test/supervisor), which must give
 * identical results: [kind, current mode, requested mode, result for a second group member].
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { worldTmp } from '../helpers/tmp.js';
import { GROUP, OWNER } from '../helpers/users.js';

/**
 * The tree both rule tests run on, owned by another uid: a fresh setgid directory of OWNER:GROUP that every
 * uid can traverse (`create` in beforeAll, `cleanup` in afterAll), and `node`, a new file or directory
 * in it owned by OWNER:GROUP with an exact mode.
 */
export function ruleTree(tag: string): { dir(): string; create(): void; cleanup(): void; node(kind: 'dir' | 'file', mode: number): string } {
  let tmp: { dir: string; cleanup: () => void } | undefined;
  let n = 0;
  return {
    dir: () => tmp!.dir,
    create() {
      tmp = worldTmp(tag);
      fs.chmodSync(tmp.dir, 0o2775);
      fs.chownSync(tmp.dir, OWNER.uid, GROUP);
    },
    cleanup: () => tmp?.cleanup(),
    node(kind, mode) {
      const p = path.join(tmp!.dir, `${kind}${n++}`);
      if (kind === 'dir') fs.mkdirSync(p);
      else fs.writeFileSync(p, 'x');
      fs.chownSync(p, OWNER.uid, GROUP);
      fs.chmodSync(p, mode);
      return p;
    },
  };
}

export const MODES: Array<['dir' | 'file', number, number, string]> = [
  ['dir', 0o2775, 0o775, 'rc=0 errno=0'],
  ['dir', 0o2775, 0o2775, 'rc=0 errno=0'],
  ['dir', 0o770, 0o775, 'rc=0 errno=0'],
  ['dir', 0o2770, 0o775, 'rc=0 errno=0'],
  ['dir', 0o775, 0o775, 'rc=0 errno=0'],
  ['dir', 0o775, 0o700, 'rc=-1 errno=EPERM'],
  ['dir', 0o775, 0o770, 'rc=-1 errno=EPERM'],
  ['dir', 0o2775, 0o755, 'rc=-1 errno=EPERM'],
  ['dir', 0o775, 0o2775, 'rc=-1 errno=EPERM'], // a requested setgid that is not there
  ['dir', 0o1775, 0o775, 'rc=-1 errno=EPERM'], // an unrequested sticky bit
  ['dir', 0o4775, 0o775, 'rc=-1 errno=EPERM'],
  ['file', 0o644, 0o755, 'rc=-1 errno=EPERM'],
  ['file', 0o2664, 0o664, 'rc=-1 errno=EPERM'], // setgid tolerated on directories only
  ['file', 0o664, 0o664, 'rc=0 errno=0'],
  ['file', 0o660, 0o664, 'rc=0 errno=0'],
];

export const MODE_FUNCTIONS = ['fchmodat', 'chmod', 'fchmod'] as const;
export const TIME_FUNCTIONS = ['utimensat', 'futimens', 'utimes', 'utime', 'lutimes', 'futimesat'] as const;

/** The owner's calls: [function, kind, mode, argument]; each must behave exactly as without the fix. */
export const OWNER_CASES: Array<[string, 'dir' | 'file', number, string]> = [
  ['chmod', 'dir', 0o2775, '700'],
  ['fchmodat', 'dir', 0o775, '2770'],
  ['fchmod', 'file', 0o644, '755'],
  ['utimensat', 'file', 0o644, '604800'],
  ['utimes', 'file', 0o444, '-604800'],
  ['chmod', 'file', 0o644, '7777'],
];
