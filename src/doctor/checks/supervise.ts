/** Whether the supervise method (static executables) can work on this kernel. */
import { superviseTargets } from '../../apply/core.js';
import { oneLine } from '../../errors.js';
import { superviseSupport } from '../../supervisor/kernel.js';
import type { Check } from '../types.js';

const superviseKernel: Check = {
  name: 'supervise-kernel',
  description: 'the kernel offers what the supervise method needs for static executables (seccomp user notification with CONTINUE, Linux 5.8+)',
  run(ctx) {
    let users: string[];
    try {
      users = superviseTargets(ctx.status().targets);
    } catch (e) {
      return { status: 'warning', finding: `status could not tell which executables need it: ${oneLine(e)}` };
    }
    const k = superviseSupport();
    if (users.length === 0) return { status: 'ok', finding: `no static executable needs it (${k.why})` };
    if (k.supported) return { status: 'ok', finding: `${users.join(', ')}: ${k.why}` };
    return {
      status: 'problem',
      finding:
        `${users.join(', ')} need the supervise method, but ${k.why}; ` +
        'upgrade the kernel (5.8 or later), use a dynamically linked mamba, or give every user a private package cache (pkgs_dirs in ~/.condarc)',
    };
  },
};

export const SUPERVISE_CHECKS: Check[] = [superviseKernel];
