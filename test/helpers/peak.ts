/**
 * Peak memory of one run of the built CLI, from GNU time's `%M` in a child process (the kernel's count of
 * the process's resident pages, not a timing).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const TIME = '/usr/bin/time';
const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));

/** Runs `mambapatch ARGS` under GNU time; its exit status, peak RSS in KiB and output. */
export function cliPeak(args: string[]): { status: number | null; kib: number; stdout: string; stderr: string } {
  const r = spawnSync(TIME, ['-f', 'PEAK %M', process.execPath, CLI, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, NO_COLOR: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 300_000,
  });
  const m = /PEAK (\d+)\s*$/.exec(r.stderr);
  return { status: r.status, kib: m ? Number(m[1]) : NaN, stdout: r.stdout, stderr: r.stderr.replace(/PEAK \d+\s*$/, '') };
}
