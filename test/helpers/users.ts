import { spawnSync, type SpawnSyncReturns } from 'node:child_process';

/** The shared-prefix cast: the owner A, a second member B of group G, and an outsider C. */
export const OWNER = { uid: 4101, gid: 4100 };
export const MEMBER = { uid: 4102, gid: 4100 };
export const OUTSIDER = { uid: 4103, gid: 4103 };
export const GROUP = 4100;

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command as another uid/gid with setpriv (needs root). Numeric ids need no passwd entry.
 * Debian's /usr/bin/python3 must be used by callers, not the pyenv one under root's home.
 */
export function runAs(
  who: { uid: number; gid: number },
  cmd: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeout?: number } = {},
): RunResult {
  const r: SpawnSyncReturns<string> = spawnSync(
    'setpriv',
    [`--reuid=${who.uid}`, `--regid=${who.gid}`, '--clear-groups', '--inh-caps=-all', '--', cmd, ...args],
    {
      encoding: 'utf8',
      env: opts.env ?? { PATH: '/usr/bin:/bin', LANG: 'C' },
      cwd: opts.cwd ?? '/',
      timeout: opts.timeout ?? 60_000,
    },
  );
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
