/** Exit codes, documented in the README. */
export const EXIT = {
  OK: 0,
  ERROR: 1,
  USAGE: 2,
  CHECK_FAILED: 3,
  CHANGED: 10,
} as const;

/**
 * An error the user can act on: one line, naming the file and the reason.
 * Everything the library core throws on bad input is one of these; anything else is a bug
 * (the CLI prints its stack only with --debug).
 */
export class MambapatchError extends Error {
  readonly exitCode: number;
  readonly file?: string;
  /** The message without the file name. */
  readonly reason: string;
  constructor(message: string, opts: { file?: string; exitCode?: number; cause?: unknown } = {}) {
    super(opts.file ? `${opts.file}: ${message}` : message, opts.cause ? { cause: opts.cause } : undefined);
    this.name = 'MambapatchError';
    this.exitCode = opts.exitCode ?? EXIT.ERROR;
    this.file = opts.file;
    this.reason = message;
  }
}

/** Bad command-line usage (exit 2). */
export class UsageError extends MambapatchError {
  constructor(message: string) {
    super(message, { exitCode: EXIT.USAGE });
    this.name = 'UsageError';
  }
}

/** One line for any thrown value; system errors keep their code and path. */
export function oneLine(err: unknown): string {
  if (err instanceof Error) {
    const e = err as NodeJS.ErrnoException;
    const msg = e.message.split('\n')[0] ?? String(err);
    return msg;
  }
  return String(err).split('\n')[0] ?? '';
}

/** An error opening or reading `file` as one line naming it (the errno code when there is one); ours pass through. */
export function cannotRead(e: unknown, file: string): never {
  if (e instanceof MambapatchError) throw e;
  throw new MambapatchError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { file });
}

/** An error writing `file` as one line naming it (the system's message); ours pass through. */
export function cannotWrite(e: unknown, file: string): never {
  if (e instanceof MambapatchError) throw e;
  throw new MambapatchError(`cannot write: ${(e as Error).message}`, { file });
}
