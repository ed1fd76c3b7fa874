/** `mambapatch elf ...` end to end: the built CLI, its output formats and its exit codes. */
import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cachedBuild } from '../helpers/build.js';
import { missing } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';

const CLI = fileURLToPath(new URL('../../dist/src/cli.js', import.meta.url));
const cli = (...args: string[]) => spawnSync(process.execPath, [CLI, 'elf', ...args], { encoding: 'utf8' });

let tmp: { dir: string; cleanup: () => void };
let exe: string;
let stat: string;

describe.skipIf(missing({ tools: ['gcc', 'readelf'] }))('mambapatch elf', () => {
  beforeAll(() => {
    tmp = worldTmp('elf-cli');
    const src = join(tmp.dir, 'main.c');
    writeFileSync(src, '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n');
    exe = cachedBuild({ name: 'cli-hello', compiler: 'gcc', args: [], sources: [src] });
    stat = cachedBuild({ name: 'cli-hello-static', compiler: 'gcc', args: ['-static'], sources: [src] });
  });
  afterAll(() => tmp?.cleanup());

  const copy = (from: string, name: string): string => {
    const to = join(tmp.dir, name);
    copyFileSync(from, to);
    return to;
  };

  it('info prints a summary, and --json the same fields', () => {
    const h = cli('info', exe);
    expect(h.status).toBe(0);
    expect(h.stdout).toMatch(/machine: +x86_64/);
    expect(h.stdout).toMatch(/needed: +libc\.so\.6/);
    const j = cli('info', exe, '--json');
    expect(j.status).toBe(0);
    const info = JSON.parse(j.stdout);
    expect(info).toMatchObject({ file: exe, bits: 64, endian: 'little', machine: 'x86_64', needed: ['libc.so.6'], editable: true });
    expect(info.importedSymbols).toContain('puts');
  });

  it('print-needed prints one name a line, like readelf -d', () => {
    const r = cli('print-needed', '/bin/ls');
    expect(r.status).toBe(0);
    const readelf = spawnSync('readelf', ['-dW', '/bin/ls'], { encoding: 'utf8' }).stdout;
    const names = [...readelf.matchAll(/\(NEEDED\)\s+Shared library: \[(.*)\]/g)].map((m) => m[1]);
    expect(r.stdout).toBe(names.map((n) => `${n}\n`).join(''));
  });

  it('add-needed and remove-needed report one line and restore the original', () => {
    const f = copy(exe, 'edit');
    const a = cli('add-needed', f, 'libmarker.so');
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(new RegExp(`^added libmarker\\.so to ${f}: [a-zA-Z. ,;()-]+ \\(\\d+ bytes changed in place, \\d+ added, \\d+ moved\\)\\n$`));
    expect(cli('print-needed', f).stdout).toBe('libc.so.6\nlibmarker.so\n');
    const again = cli('add-needed', f, 'libmarker.so');
    expect(again.status).toBe(0);
    expect(again.stdout).toBe(`libmarker.so is already needed by ${f}; nothing changed\n`);
    const r = cli('remove-needed', f, 'libmarker.so', '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, changed: true, tier: 'undo' });
    expect(Buffer.compare(readFileSync(f), readFileSync(exe))).toBe(0);
  });

  it('--first and --output: the input stays untouched', () => {
    const f = copy(exe, 'input');
    const out = join(tmp.dir, 'output');
    const r = cli('add-needed', f, 'libfirst.so', '--first', '--output', out, '--json');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: true, changed: true, output: out });
    expect(Buffer.compare(readFileSync(f), readFileSync(exe))).toBe(0);
    expect(cli('print-needed', out).stdout).toBe('libfirst.so\nlibc.so.6\n');
  });

  it('exit 1 with one line and no change for files it refuses; exit 2 for usage errors', () => {
    const s = copy(stat, 'static');
    const r = cli('add-needed', s, 'libmarker.so');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(`mambapatch: ${s}: refusing to edit: the file is statically linked (no PT_DYNAMIC); a static file cannot load a library\n`);
    expect(Buffer.compare(readFileSync(s), readFileSync(stat))).toBe(0);
    const j = cli('add-needed', s, 'libmarker.so', '--json');
    expect(JSON.parse(j.stdout)).toMatchObject({ ok: false, exitCode: 1 });
    const text = join(tmp.dir, 'text');
    writeFileSync(text, 'not elf');
    expect(cli('info', text).stderr).toBe(`mambapatch: ${text}: not an ELF file (bad magic)\n`);
    expect(cli('print-needed', join(tmp.dir, 'missing')).status).toBe(1);
    expect(cli('add-needed', exe).status).toBe(2);
    expect(cli('add-needed', exe, '').status).toBe(2);
  });
});
