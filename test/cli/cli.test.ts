import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const run = (...args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });

describe('cli', () => {
  it('prints help and exits 0', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Usage: mambapatch');
  });
  it('stops quietly when the reader of its output goes away (| head)', () => {
    // A large JSON document (every imported symbol of libstdc++) into a pipe closed after one line.
    const big = '/usr/lib/x86_64-linux-gnu/libstdc++.so.6';
    const r = spawnSync('sh', ['-c', `"$0" "$1" elf info "$2" --json | head -n 1 >/dev/null; exit 0`, process.execPath, CLI, big], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
  });
  it('exits 2 on an unknown command', () => {
    const r = run('no-such-command');
    expect(r.status).toBe(2);
  });
});
