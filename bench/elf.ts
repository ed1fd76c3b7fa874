/**
 * `npm run bench elf`, two tables:
 *  1. our `elf add-needed` against `patchelf --add-needed` on the same inputs (a few corpus files, the system
 *     libstdc++, and a generated library of more than 20 MB): median wall time over several repetitions (our
 *     CLI end to end, our library API in-process, patchelf's CLI), bytes added (output size − input size)
 *     and whether each output still loads the added library. BENCH_REPS sets the repetitions.
 *  2. at scale, on Debian's libLLVM-14.so.1 (package libllvm14, installed with apt-get when missing) and a
 *     generated executable of more than 100 MiB: time and peak RSS (GNU time's %M) of `add-needed`,
 *     `remove-needed` and `print-needed`, ours (the built CLI started through its #! line, as the installed
 *     `mambapatch` is) and patchelf's (also followed by an fsync of its output, the durability ours has), next
 *     to `cp` of the same file and a bare `node -e 0`, measured side by side in one run, each run after a
 *     `sync`, median of BENCH_SCALE_REPS (default 5). BENCH_ELF=scale runs only this table.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { editElfFile, prepareAdd } from '../src/elf/index.js';
import { cachedBuild } from '../test/helpers/build.js';
import { worldTmp } from '../test/helpers/tmp.js';
import { MARKER_LINE, MARKER_NAME, bigExecutable, corpus, markerLib, runElf, type Arch, type Kind } from '../test/elf/fixtures.js';

/** Our CLI as `mambapatch` runs it: the built file, started through its #! line (npm links it as the bin). */
const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const REPS = Number(process.env.BENCH_REPS ?? 7);

interface Input {
  label: string;
  path: string;
  arch: Arch;
  kind: Kind;
  /** Symbol the host calls for a library (null: dlopen only). */
  symbol: string | null;
}

/** A > 20 MiB shared library: 4,000 exported functions and a 20 MiB .rodata blob (cached). */
function bigLibrary(): string {
  const dir = '/tmp/mambapatch-fixture-cache/bench-big';
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const blob = join(dir, 'blob-20MiB.bin');
  if (!existsSync(blob)) {
    const b = Buffer.alloc(20 << 20);
    let x = 0x9e3779b9;
    for (let i = 0; i < b.length; i += 4) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      b.writeUInt32LE(x >>> 0, i);
    }
    writeFileSync(`${blob}.tmp`, b);
    renameSync(`${blob}.tmp`, blob);
  }
  const src = join(dir, 'big.c');
  if (!existsSync(src)) {
    const lines = ['#include <stdio.h>', `__asm__(".section .rodata\\n.globl big_blob\\n.type big_blob,@object\\nbig_blob:\\n.incbin \\"${blob}\\"\\n.size big_blob, .-big_blob\\n.previous");`, 'extern const unsigned char big_blob[];'];
    for (let i = 0; i < 4000; i++) lines.push(`int big_function_${i}(int x) { return x * ${i} + big_blob[${i * 4099}]; }`);
    lines.push('int corpus_fn(void) { printf("ORIGINAL big library: %d\\n", big_function_7(6)); return 7; }');
    writeFileSync(`${src}.tmp`, lines.join('\n') + '\n');
    renameSync(`${src}.tmp`, src);
  }
  return cachedBuild({ name: 'libbigbench.so', compiler: 'gcc', args: ['-O1', '-fPIC', '-shared', '-Wl,-soname,libbigbench.so'], sources: [src] });
}

function inputs(): Input[] {
  const files = corpus();
  const pick = (id: string): Input => {
    const f = files.find((c) => c.id === id)!;
    return { label: id, path: f.path, arch: f.arch, kind: f.kind, symbol: 'corpus_fn' };
  };
  return [
    pick('x86_64-c-pie-default'),
    pick('x86_64-c-exec-default'),
    pick('x86_64-c-lib-lld'),
    pick('x86_64-cxx-lib-default'),
    pick('x86_64-c-pie-conda-long'),
    pick('x86_64-c-lib-manysyms'),
    pick('x86_64-c-exec-lldbigbss'),
    pick('aarch64-c-lib-default'),
    pick('aarch64-c-pie-lld'),
    pick('ppc64le-c-lib-spare0'),
    { label: 'libstdc++.so.6 (system)', path: realpathSync('/usr/lib/x86_64-linux-gnu/libstdc++.so.6'), arch: 'x86_64', kind: 'lib', symbol: null },
    { label: 'libbigbench.so (generated)', path: bigLibrary(), arch: 'x86_64', kind: 'lib', symbol: 'corpus_fn' },
  ];
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Median wall time (ms) of a command, after one untimed warm-up run; NaN (and a note) when it fails. */
function timeCommand(cmd: string, args: string[], out: string): number {
  const times: number[] = [];
  for (let i = 0; i <= REPS; i++) {
    rmSync(out, { force: true });
    const t0 = performance.now();
    const r = spawnSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const dt = performance.now() - t0;
    if (r.status !== 0) {
      console.log(`note: ${cmd} ${args.join(' ')} failed (exit ${r.status}): ${r.stderr.trim().split('\n').pop()}`);
      rmSync(out, { force: true });
      return NaN;
    }
    if (i > 0) times.push(dt);
  }
  return median(times);
}

function timeApi(input: string, out: string): number {
  const times: number[] = [];
  for (let i = 0; i <= REPS; i++) {
    rmSync(out, { force: true });
    const t0 = performance.now();
    editElfFile(input, (elf) => prepareAdd(elf, MARKER_NAME, { file: input }), { output: out });
    const dt = performance.now() - t0;
    if (i > 0) times.push(dt);
  }
  return median(times);
}

async function loads(inp: Input, file: string): Promise<string> {
  const r = await runElf(inp.arch, inp.kind, file, join(markerLib(inp.arch), '..'), inp.symbol);
  return r.status === 0 && r.stdout.startsWith(`${MARKER_LINE}\n`) ? 'yes' : `NO (${r.status})`;
}

const ms = (x: number) => (Number.isNaN(x) ? 'FAILED' : x.toFixed(1));
const fmtSize = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`);

const SCALE_REPS = Math.max(5, Number(process.env.BENCH_SCALE_REPS ?? 5));
const LLVM = '/usr/lib/x86_64-linux-gnu/libLLVM-14.so.1';

/** Installs a Debian package with apt-get unless `present()` already holds; returns whether it holds after. */
function ensurePackage(pkg: string, why: string, present: () => boolean): boolean {
  if (present()) return true;
  console.log(`installing ${pkg} (apt-get) ${why}`);
  spawnSync('apt-get', ['install', '-y', '--no-install-recommends', pkg], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return present();
}

const hasPatchelf = (): boolean => spawnSync('patchelf', ['--version'], { stdio: 'ignore' }).status === 0;

/** Debian's libLLVM-14.so.1, installed (package libllvm14) when missing; undefined when that fails. */
function libllvm(): string | undefined {
  return ensurePackage('libllvm14', 'for the scale benchmark', () => existsSync(LLVM)) ? realpathSync(LLVM) : undefined;
}

/**
 * Median wall time (ms) and median peak RSS (MiB) of a command under GNU time, after one warm-up run. Every
 * run starts after `sync`: no run pays for the writeback of the previous one's output (patchelf does not
 * fsync what it writes; we do).
 */
function measure(cmd: string, args: string[], before?: () => void): { ms: number; mib: number } {
  const times: number[] = [];
  const peaks: number[] = [];
  for (let i = 0; i <= SCALE_REPS; i++) {
    before?.();
    spawnSync('sync');
    const t0 = performance.now();
    const r = spawnSync('/usr/bin/time', ['-f', 'PEAK %M', cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
    const dt = performance.now() - t0;
    const m = /PEAK (\d+)\s*$/.exec(r.stderr);
    if (r.status !== 0 || !m) return { ms: NaN, mib: NaN };
    if (i > 0) (times.push(dt), peaks.push(Number(m[1]) / 1024));
  }
  return { ms: median(times), mib: median(peaks) };
}

async function scale(tmp: string): Promise<void> {
  const files = [
    { label: 'libLLVM-14.so.1 (Debian)', path: libllvm() },
    { label: 'generated executable', path: bigExecutable(128) },
  ];
  const node = measure(process.execPath, ['-e', '0']);
  // What our #! line starts: Node without the certificate bundle NODE_EXTRA_CA_CERTS makes it parse.
  const bareNode = process.env.NODE_EXTRA_CA_CERTS ? measure('env', ['-u', 'NODE_EXTRA_CA_CERTS', process.execPath, '-e', '0']) : undefined;
  const head = ['file', 'size', 'command', 'ours ms', 'ours peak MiB', 'patchelf ms', 'patchelf peak MiB', 'ours / patchelf', 'patchelf + fsync ms', 'ours / (patchelf + fsync)', 'ours / (cp + node -e 0)'];
  const rows: string[][] = [];
  const verdicts: string[] = [];
  for (const f of files) {
    if (!f.path) {
      verdicts.push(`${f.label}: not available (apt-get install libllvm14 failed)`);
      continue;
    }
    const input = f.path;
    const size = statSync(input).size;
    const out = join(tmp, 'scale-ours');
    const back = join(tmp, 'scale-back');
    const pOut = join(tmp, 'scale-patchelf');
    const pBack = join(tmp, 'scale-patchelf-back');
    const cp = measure('cp', [input, join(tmp, 'scale-cp')], () => rmSync(join(tmp, 'scale-cp'), { force: true }));
    const clean = (...fs: string[]) => () => fs.forEach((x) => rmSync(x, { force: true }));
    const ours = {
      'add-needed': measure(CLI, ['elf', 'add-needed', input, MARKER_NAME, '--output', out, '--quiet'], clean(out)),
      'remove-needed': measure(CLI, ['elf', 'remove-needed', out, MARKER_NAME, '--output', back, '--quiet'], clean(back)),
      'print-needed': measure(CLI, ['elf', 'print-needed', input]),
    };
    const exact = existsSync(back) && spawnSync('cmp', ['-s', input, back]).status === 0;
    const theirs = {
      'add-needed': measure('patchelf', ['--add-needed', MARKER_NAME, '--output', pOut, input], clean(pOut)),
      'remove-needed': measure('patchelf', ['--remove-needed', MARKER_NAME, '--output', pBack, pOut], clean(pBack)),
      'print-needed': measure('patchelf', ['--print-needed', input]),
    };
    // The same durability as ours: patchelf, then its output synced to disk (we fsync before the rename).
    const durable = (o: string, args: string[]) => measure('sh', ['-c', 'patchelf "$@" && exec sync -d "$0"', o, ...args], clean(o));
    const theirsSynced: Partial<Record<keyof typeof theirs, { ms: number; mib: number }>> = {
      'add-needed': durable(pOut, ['--add-needed', MARKER_NAME, '--output', pOut, input]),
      'remove-needed': durable(pBack, ['--remove-needed', MARKER_NAME, '--output', pBack, pOut]),
    };
    const ref = cp.ms + node.ms;
    for (const op of Object.keys(ours) as (keyof typeof ours)[]) {
      const a = ours[op];
      const b = theirs[op];
      const c = theirsSynced[op];
      rows.push([f.label, fmtSize(size), op, ms(a.ms), a.mib.toFixed(1), ms(b.ms), b.mib.toFixed(1), (a.ms / b.ms).toFixed(2), c ? ms(c.ms) : '', c ? (a.ms / c.ms).toFixed(2) : '', (a.ms / ref).toFixed(2)]);
      if (!(a.mib < 64)) verdicts.push(`${f.label} ${op}: peak RSS ${a.mib.toFixed(1)} MiB is not under 64 MiB`);
      if (size > 10e6 && !(a.ms < b.ms)) verdicts.push(`${f.label} ${op}: ${ms(a.ms)} ms is not faster than patchelf (${ms(b.ms)} ms)`);
    }
    rows.push([f.label, fmtSize(size), '`cp` of the file', ms(cp.ms), cp.mib.toFixed(1), '', '', '', '', '', '']);
    if (!exact) verdicts.push(`${f.label}: remove-needed did not restore the original bytes`);
  }
  rows.push(['-', '-', '`node -e 0`', ms(node.ms), node.mib.toFixed(1), '', '', '', '', '', '']);
  if (bareNode) rows.push(['-', '-', '`node -e 0` without NODE_EXTRA_CA_CERTS', ms(bareNode.ms), bareNode.mib.toFixed(1), '', '', '', '', '', '']);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
  console.log(`\nat scale: median of ${SCALE_REPS} runs (after one warm-up), wall time and peak RSS (GNU time %M), measured side by side`);
  console.log(line(head));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const r of rows) console.log(line(r));
  console.log(verdicts.length ? verdicts.map((v) => `MISSED: ${v}`).join('\n') : 'every command under 64 MiB peak and faster than patchelf on every file over 10 MB; removals exact');
}

export async function run(): Promise<void> {
  const tmp = worldTmp('bench-elf');
  try {
    if (!ensurePackage('patchelf', 'to compare against', hasPatchelf)) console.log('patchelf is missing: its columns say FAILED');
    // BENCH_ELF=scale runs only the second table.
    if (process.env.BENCH_ELF === 'scale') return await scale(tmp.dir);
    const head = ['file', 'size', 'ours ms (CLI)', 'ours ms (API)', 'patchelf ms', 'ratio CLI/patchelf', 'bytes added ours', 'bytes added patchelf', 'tier', 'runs ours', 'runs patchelf'];
    const rows: string[][] = [];
    let both = 0; // inputs both tools edited
    let fewerBytes = 0;
    let noSlower = 0;
    let patchelfFailed = 0;
    for (const inp of inputs()) {
      const ours = join(tmp.dir, 'ours');
      const theirs = join(tmp.dir, 'patchelf');
      const api = join(tmp.dir, 'api');
      const size = statSync(inp.path).size;
      const oursMs = timeCommand(CLI, ['elf', 'add-needed', inp.path, MARKER_NAME, '--output', ours, '--quiet'], ours);
      const apiMs = timeApi(inp.path, api);
      const patchelfMs = timeCommand('patchelf', ['--add-needed', MARKER_NAME, '--output', theirs, inp.path], theirs);
      const added = (f: string) => (existsSync(f) ? statSync(f).size - size : NaN);
      const oursAdded = added(ours);
      const theirsAdded = added(theirs);
      const tier = editElfFile(inp.path, (elf) => prepareAdd(elf, MARKER_NAME), { output: api }).tier ?? '';
      if (Number.isNaN(patchelfMs)) patchelfFailed++;
      else {
        both++;
        if (oursAdded < theirsAdded) fewerBytes++;
        if (oursMs <= patchelfMs) noSlower++;
      }
      rows.push([
        inp.label,
        fmtSize(size),
        ms(oursMs),
        ms(apiMs),
        ms(patchelfMs),
        Number.isNaN(oursMs / patchelfMs) ? '-' : (oursMs / patchelfMs).toFixed(2),
        Number.isNaN(oursAdded) ? 'FAILED' : String(oursAdded),
        Number.isNaN(theirsAdded) ? 'FAILED' : String(theirsAdded),
        tier,
        existsSync(ours) ? await loads(inp, ours) : '-',
        existsSync(theirs) ? await loads(inp, theirs) : '-',
      ]);
    }
    const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
    const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
    const bare = join(tmp.dir, 'none');
    const nodeMs = timeCommand(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(bare)}, '')`], bare);
    console.log(`median of ${REPS} runs (after one warm-up); ratio < 1 means ours is faster; a bare \`node -e\` takes ${nodeMs.toFixed(1)} ms here`);
    console.log(line(head));
    console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
    for (const r of rows) console.log(line(r));
    console.log(
      `of ${both} inputs both edited: fewer bytes added than patchelf on ${fewerBytes}, no slower end to end on ${noSlower}; ` +
        `patchelf failed on ${patchelfFailed} that we edited`,
    );
    await scale(tmp.dir);
  } finally {
    tmp.cleanup();
  }
}
