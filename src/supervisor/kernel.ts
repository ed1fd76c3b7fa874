/**
 * Whether this machine's kernel offers what the supervisor needs: seccomp user notification (listed in
 * /proc/sys/kernel/seccomp/actions_avail as `user_notif`, Linux 5.0) with CONTINUE (5.5) and a listener
 * woken when its last filtered task exits (5.8). The blob probes the same at every start and runs the
 * program unpatched when anything is missing; this is the same verdict ahead of time, for status and doctor.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';

export const MIN_KERNEL: readonly [number, number] = [5, 8];

export interface SuperviseSupport {
  supported: boolean;
  /** One line: what was found. */
  why: string;
}

export function superviseSupport(release: string = os.release(), actionsFile = '/proc/sys/kernel/seccomp/actions_avail'): SuperviseSupport {
  const m = /^(\d+)\.(\d+)/.exec(release);
  const [maj, min] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  const need = `Linux ${MIN_KERNEL.join('.')}`;
  if (maj < MIN_KERNEL[0] || (maj === MIN_KERNEL[0] && min < MIN_KERNEL[1])) {
    return { supported: false, why: `kernel ${release} is older than ${need}: supervised executables run unpatched (as before apply)` };
  }
  let actions: string;
  try {
    actions = fs.readFileSync(actionsFile, 'utf8');
  } catch (e) {
    return { supported: false, why: `cannot read ${actionsFile} (${(e as NodeJS.ErrnoException).code ?? 'error'}): no seccomp filters in this kernel?` };
  }
  if (!actions.split(/\s+/).includes('user_notif')) {
    return { supported: false, why: `${actionsFile} does not list user_notif: seccomp user notification is not available` };
  }
  return { supported: true, why: `kernel ${release} offers seccomp user notification with CONTINUE (${need} or later)` };
}
