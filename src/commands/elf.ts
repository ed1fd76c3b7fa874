/** `mambapatch elf ...`: a thin layer over src/elf (inspect, add and remove one DT_NEEDED or the entry hook). */
import type { Command } from 'commander';
import { MambapatchError } from '../errors.js';
import { printJson, say, warn, type OutputOptions } from '../output.js';
import { action, withCommonFlags } from './common.js';
import { readElfFile, type ElfInfo } from '../elf/info.js';
import type { ElfFile } from '../elf/parse.js';
import type { EditReport, PreparedEdit } from '../elf/result.js';

type Editor = typeof import('../elf/index.js');

/**
 * Runs one edit of `file` (into --output when given). The editing half of the engine is loaded only here,
 * by the commands that edit: inspection starts faster.
 */
async function edit(file: string, opts: EditOpts, prepare: (m: Editor, elf: ElfFile) => PreparedEdit): Promise<EditReport> {
  const m = await import('../elf/index.js');
  return m.editElfFileAsync(file, (elf) => prepare(m, elf), { output: opts.output });
}

const OUTPUT = ['--output <out>', 'write the result to OUT instead of replacing FILE'] as const;

function infoLines(file: string, i: ElfInfo): string[] {
  const lines = [
    `file:        ${file}`,
    `class:       ELF${i.bits} ${i.endian}-endian ${i.type} (${i.kind})`,
    `machine:     ${i.machine}`,
  ];
  if (i.interpreter) lines.push(`interpreter: ${i.interpreter}`);
  if (i.soname) lines.push(`soname:      ${i.soname}`);
  for (const n of i.needed) lines.push(`needed:      ${n}`);
  if (i.rpath !== undefined) lines.push(`rpath:       ${i.rpath}`);
  if (i.runpath !== undefined) lines.push(`runpath:     ${i.runpath}`);
  if (i.glibcMax) lines.push(`glibc:       >= ${i.glibcMax}`);
  lines.push(`imports:     ${i.importedSymbols.length} symbols`);
  if (i.isDynamic) lines.push(`spare slots: ${i.spareDynamicSlots}`);
  if (i.staticTls) lines.push('static TLS:  yes (DF_STATIC_TLS)');
  if (i.entryHook) {
    const h = i.entryHook;
    lines.push(`entry hook:  ${h.id} at 0x${h.address.toString(16)} (original entry 0x${h.originalEntry.toString(16)})`);
  }
  lines.push(`editable:    ${i.editable ? 'yes' : `no (${file} ${i.refusal})`}`);
  return lines;
}

function renderEdit(opts: EditOpts, file: string, r: EditReport): void {
  if (opts.json) {
    printJson({ ok: true, file, output: opts.output ?? file, ...r });
  } else {
    say(opts, r.message);
  }
}

interface EditOpts extends OutputOptions {
  first?: boolean;
  output?: string;
  blob?: string;
}

export function register(program: Command): void {
  const elf = program.command('elf').description('inspect ELF files; add or remove one DT_NEEDED entry or the entry hook');

  withCommonFlags(elf.command('info').argument('<file>').description('show the dynamic information of an ELF file'))
    .action(
      action((file: string, opts: OutputOptions) => {
        const info = readElfFile(file);
        if (opts.json) printJson({ file, ...info });
        else for (const l of infoLines(file, info)) say(opts, l);
      }),
    );

  withCommonFlags(elf.command('print-needed').argument('<file>').description('print the DT_NEEDED entries, one a line, in order'), { json: false })
    .action(
      action((file: string, opts: OutputOptions) => {
        const info = readElfFile(file, { symbols: false });
        if (!opts.quiet) for (const n of info.needed) process.stdout.write(n + '\n');
      }),
    );

  withCommonFlags(
    elf
      .command('add-needed')
      .argument('<file>')
      .argument('<name>', 'library name to add, e.g. libmambapatch.so')
      .option('--first', 'insert before every other DT_NEEDED (interposition); default: last')
      .option(...OUTPUT)
      .description('add one DT_NEEDED entry, changing as few bytes as possible'),
  ).action(
    action(async (file: string, name: string, opts: EditOpts) => {
      checkName(name);
      const r = await edit(file, opts, (m, elf) => m.prepareAdd(elf, name, { first: opts.first, file }));
      if (r.changed && findStaticTls(name) && readElfFile(opts.output ?? file, { symbols: false }).kind === 'library') {
        warn(opts, `${name} uses initial-exec TLS (DF_STATIC_TLS); ${file} may fail to load with dlopen ("cannot allocate memory in static TLS block")`);
      }
      renderEdit(opts, file, r);
    }),
  );

  withCommonFlags(
    elf
      .command('remove-needed')
      .argument('<file>')
      .argument('<name>')
      .option(...OUTPUT)
      .description('remove one DT_NEEDED entry (byte-for-byte restore when this tool added it)'),
  ).action(
    action(async (file: string, name: string, opts: EditOpts) => {
      checkName(name);
      renderEdit(opts, file, await edit(file, opts, (m, elf) => m.prepareRemove(elf, name, { file })));
    }),
  );

  withCommonFlags(
    elf
      .command('add-entry-hook')
      .argument('<file>')
      .option(...OUTPUT)
      .option('--blob <blob>', "the hook blob to add (default: the shipped supervisor for FILE's architecture)")
      .description('add the supervisor entry hook to an executable (static ones too): a new R+X segment that runs first'),
  ).action(
    action(async (file: string, opts: EditOpts) => {
      // Loaded only here: the blob locator brings the compiler lookup with it, which add-needed never needs.
      const { hookBlob, readHookBlob } = await import('../supervisor/blob.js');
      const blob = opts.blob ? readHookBlob(opts.blob).bytes : (arch: string) => hookBlob(arch).bytes;
      renderEdit(opts, file, await edit(file, opts, (m, elf) => m.prepareEntryHook(elf, blob, { file })));
    }),
  );

  withCommonFlags(
    elf
      .command('remove-entry-hook')
      .argument('<file>')
      .option(...OUTPUT)
      .description('remove the entry hook (byte-for-byte restore of the original)'),
  ).action(
    action(async (file: string, opts: EditOpts) => {
      renderEdit(opts, file, await edit(file, opts, (m, elf) => m.prepareRemoveEntryHook(elf, { file })));
    }),
  );
}

function checkName(name: string): void {
  if (name === '' || name.includes('\0')) throw new MambapatchError('library name must be a non-empty string without NUL bytes', { exitCode: 2 });
}

/** The added library's DF_STATIC_TLS flag, when NAME is a path to a readable ELF file. */
function findStaticTls(name: string): boolean {
  if (!name.includes('/')) return false;
  try {
    return readElfFile(name, { symbols: false }).staticTls;
  } catch {
    return false;
  }
}
