/**
 * A process under a file size limit (prlimit, util-linux): writes past it are cut short and then fail with
 * EFBIG, as on a disk that fills up (ENOSPC). SIGXFSZ is ignored (inherited through exec), so that the
 * write returns the error instead of killing the process.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';

export function underSizeLimit(bytes: number, cmd: string, args: string[], env: NodeJS.ProcessEnv = { PATH: process.env.PATH }): SpawnSyncReturns<string> {
  return spawnSync('sh', ['-c', 'trap "" XFSZ; exec "$@"', 'sh', 'prlimit', `--fsize=${bytes}:${bytes}`, cmd, ...args], { encoding: 'utf8', env });
}
