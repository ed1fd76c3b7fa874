/**
 * Rendering shared by every command: stdout carries data, stderr carries messages,
 * `--json` prints exactly one JSON document on stdout and nothing else.
 */
export interface OutputOptions {
  json?: boolean;
  quiet?: boolean;
  debug?: boolean;
}

/** Colour only on a TTY, never with NO_COLOR or TERM=dumb. */
export function useColor(stream: NodeJS.WriteStream = process.stdout): boolean {
  if (process.env.NO_COLOR !== undefined && process.env.NO_COLOR !== '') return false;
  if (process.env.TERM === 'dumb') return false;
  return Boolean(stream.isTTY);
}

const CODES = { red: 31, green: 32, yellow: 33, bold: 1, dim: 2 } as const;
export type Colour = keyof typeof CODES;

export function paint(text: string, colour: Colour, stream: NodeJS.WriteStream = process.stdout): string {
  return useColor(stream) ? `\u001b[${CODES[colour]}m${text}\u001b[0m` : text;
}

export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

/** Human output on stdout, suppressed by --quiet. */
export function say(opts: OutputOptions, line = ''): void {
  if (opts.quiet || opts.json) return;
  process.stdout.write(line + '\n');
}

/** Messages on stderr (warnings), suppressed by --quiet and --json. */
export function warn(opts: OutputOptions, line: string): void {
  if (opts.quiet) return;
  process.stderr.write(`mambapatch: warning: ${line}\n`);
}
