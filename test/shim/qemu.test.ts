/** The aarch64 and ppc64le shims under qemu-user with the cross sysroots: the host kernel decides. */
import { describe } from 'vitest';
import { missing } from '../helpers/env.js';
import { TARGETS } from './fixtures.js';
import { positionSuite } from './positions.js';

for (const t of [TARGETS.aarch64, TARGETS.ppc64le]) {
  describe.skipIf(missing({ root: true, tools: [t.gcc, t.gxx, t.runner[0]!, 'setpriv'] }))(`shim under ${t.runner[0]}`, () => {
    positionSuite(t);
  });
}
