/**
 * `npm run bench apply`: apply and revert on a prefix with 100,000 files and a 50 MiB libmamba (generated
 * once, cached under /tmp), end to end through the CLI, median of BENCH_REPS runs; and the start-up time of
 * the patched stand-in against the unpatched one (hyperfine when installed, else a loop of spawns).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildPrefix, cachedCompiler } from '../src/demo/prefix.js';
import { TEMPLATES_DIR } from '../src/package.js';
import { addNeeded } from '../src/elf/index.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const REPS = Number(process.env.BENCH_REPS ?? 5);
const ROOT = '/tmp/mambapatch-bench-apply-v1';
const FILES = 100_000;
const LIB_MIB = 50;

function cli(args: string[]): number {
  const t = process.hrtime.bigint();
  const r = spawnSync(process.execPath, [CLI, ...args, '-q'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mambapatch ${args.join(' ')} failed: ${r.stderr}`);
  return Number(process.hrtime.bigint() - t) / 1e6;
}

/** A mamba 1.x prefix whose libmamba is 50 MiB (.rodata), and 100,000 package files (cached). */
function bigPrefix(): string {
  const prefix = path.join(ROOT, 'mamba1-big');
  const done = path.join(ROOT, 'mamba1-big.done');
  if (fs.existsSync(done)) return prefix;
  fs.rmSync(ROOT, { recursive: true, force: true });
  fs.mkdirSync(ROOT, { recursive: true, mode: 0o755 });
  const cache = path.join(ROOT, 'cc');
  const compile = cachedCompiler(cache);
  buildPrefix(prefix, { mamba1: true }, compile);
  const pad = path.join(ROOT, 'pad.cpp');
  fs.writeFileSync(pad, `extern "C" __attribute__((used, visibility("default"))) const char mambapatch_bench_pad[${LIB_MIB} << 20] = {1};\n`);
  const big = compile({
    name: 'libmamba.so.2',
    args: ['-std=c++17', '-O1', '-shared', '-fPIC', '-DSTANDIN_MAJOR=1', '-Wl,-soname,libmamba.so.2'],
    sources: [path.join(TEMPLATES_DIR, 'demo', 'libmamba_standin.cpp'), pad],
  });
  const lib = path.join(prefix, 'lib', 'libmamba.so.2');
  fs.rmSync(lib);
  fs.copyFileSync(big, lib);
  fs.chmodSync(lib, 0o775);
  // 100,000 files: 200 packages of 500 files, extracted in pkgs/ and hard-linked into the prefix, as conda does.
  let n = 0;
  for (let p = 0; n < FILES; p++) {
    const pkg = path.join(prefix, 'pkgs', `noise${p}-1.0-0`, 'lib', `noise${p}`);
    const dst = path.join(prefix, 'lib', `noise${p}`);
    fs.mkdirSync(pkg, { recursive: true });
    fs.mkdirSync(dst, { recursive: true });
    for (let i = 0; i < 250 && n < FILES; i++, n += 2) {
      fs.writeFileSync(path.join(pkg, `f${i}.py`), `# file ${i} of package ${p}\n`);
      fs.linkSync(path.join(pkg, `f${i}.py`), path.join(dst, `f${i}.py`));
    }
    fs.writeFileSync(path.join(prefix, 'conda-meta', `noise${p}-1.0-0.json`), JSON.stringify({ name: `noise${p}`, version: '1.0', files: [] }));
  }
  fs.writeFileSync(done, '');
  return prefix;
}

/** A mamba 2.x prefix (cached) for start-up times. */
function smallPrefix(): string {
  const prefix = path.join(ROOT, 'mamba2');
  if (!fs.existsSync(prefix)) buildPrefix(prefix, { mamba2: true }, cachedCompiler(path.join(ROOT, 'cc')));
  return prefix;
}

/** A mamba 1.x prefix (cached) for the launcher's start-up time. */
function smallPrefix1(): string {
  const prefix = path.join(ROOT, 'mamba1');
  if (!fs.existsSync(prefix)) buildPrefix(prefix, { mamba1: true }, cachedCompiler(path.join(ROOT, 'cc')));
  return prefix;
}

/** `bin/mamba-emptylib`: the stand-in with an empty library added as its first DT_NEEDED. */
function emptyNeeded(prefix: string): string {
  const lib = path.join(prefix, 'lib', 'libbenchempty.so');
  const src = path.join(ROOT, 'empty.c');
  fs.writeFileSync(src, 'int mambapatch_bench_empty;\n');
  fs.copyFileSync(cachedCompiler(path.join(ROOT, 'cc'))({ name: 'libbenchempty.so', args: ['-shared', '-fPIC', '-x', 'c'], sources: [src] }), lib);
  const exe = path.join(prefix, 'bin', 'mamba-emptylib');
  const res = addNeeded(fs.readFileSync(path.join(prefix, 'bin', 'mamba')), '$ORIGIN/../lib/libbenchempty.so', { first: true });
  fs.writeFileSync(exe, res.data, { mode: 0o755 });
  return exe;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function hasHyperfine(): boolean {
  return spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** CPU time (user + system) of the last hyperfine measurement, in ms: less noisy on a busy machine. */
let lastCpuMs = NaN;

/** Mean start-up time in ms of `cmd --version`, with hyperfine or a loop of spawns. */
function launchMs(exe: string, runs: number): number {
  lastCpuMs = NaN;
  if (hasHyperfine()) {
    const out = path.join(ROOT, 'hyperfine.json');
    const r = spawnSync('hyperfine', ['-N', '--warmup', '20', '--runs', String(runs), '--export-json', out, `${exe} --version`], { stdio: 'ignore' });
    if (r.status === 0) {
      const res = JSON.parse(fs.readFileSync(out, 'utf8')).results[0] as { mean: number; user: number; system: number };
      lastCpuMs = (res.user + res.system) * 1000;
      return res.mean * 1000;
    }
  }
  for (let i = 0; i < 20; i++) spawnSync(exe, ['--version']);
  const t = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) spawnSync(exe, ['--version']);
  return Number(process.hrtime.bigint() - t) / 1e6 / runs;
}

export async function run(): Promise<void> {
  const big = bigPrefix();
  cli(['revert', big]); // after an interrupted bench
  const libSize = fs.statSync(path.join(big, 'lib', 'libmamba.so.2')).size;
  console.log(`prefix: ${big} (${FILES.toLocaleString('en')} package files, libmamba ${(libSize / 2 ** 20).toFixed(1)} MiB), median of ${REPS} runs, CLI end to end`);
  const rows: [string, number][] = [];
  for (const method of ['needed', 'launcher'] as const) {
    const a: number[] = [];
    const r: number[] = [];
    for (let i = 0; i < REPS; i++) {
      a.push(cli(['apply', big, '--method', method]));
      r.push(cli(['revert', big]));
    }
    rows.push([`apply --method ${method}${method === 'needed' ? ' (edits the 50 MiB libmamba)' : ''}`, median(a)]);
    rows.push([`revert (${method})`, median(r)]);
  }
  rows.push(['status', median(Array.from({ length: REPS }, () => cli(['status', big])))]);
  rows.push(['node + CLI start-up alone (--version)', median(Array.from({ length: REPS }, () => cli(['--version'])))]);
  for (const [what, ms] of rows) console.log(`  ${what.padEnd(56)} ${ms.toFixed(0).padStart(6)} ms`);

  const runs = Number(process.env.BENCH_LAUNCH_RUNS ?? 300);
  const tool = hasHyperfine() ? 'hyperfine -N' : 'spawn loop';
  for (const [label, prefix, method, n] of [
    ['mamba 2.x stand-in, shim as first DT_NEEDED', smallPrefix(), 'needed', runs],
    ['mamba 1.x stand-in (Python), launcher', smallPrefix1(), 'launcher', Math.ceil(runs / 3)],
  ] as const) {
    cli(['revert', prefix]);
    const exe = path.join(prefix, 'bin', 'mamba');
    // Interleaved samples (unpatched, patched, patched, unpatched) to spread drift over both sides.
    const cpu: number[] = [];
    const u1 = launchMs(exe, n);
    cpu.push(lastCpuMs);
    cli(['apply', prefix, '--method', method]);
    const p1 = launchMs(exe, n);
    cpu.push(lastCpuMs);
    const p2 = launchMs(exe, n);
    cpu.push(lastCpuMs);
    cli(['revert', prefix]);
    const u2 = launchMs(exe, n);
    cpu.push(lastCpuMs);
    const base = (u1 + u2) / 2;
    const patched = (p1 + p2) / 2;
    console.log(`launch of the ${label} (\`bin/mamba --version\`, ${n} runs x 2, ${tool}):`);
    if (method === 'needed') {
      // The cost of loading any one more library, for scale: an empty library as first DT_NEEDED.
      const empty = emptyNeeded(prefix);
      const e = launchMs(empty, n);
      console.log(`  for scale, an empty library as first DT_NEEDED instead: wall ${e.toFixed(3)} ms, cpu ${lastCpuMs.toFixed(3)} ms`);
    }
    console.log(`  wall: unpatched ${base.toFixed(3)} ms, patched ${patched.toFixed(3)} ms, ratio ${(patched / base).toFixed(3)}`);
    if (cpu.every((c) => !Number.isNaN(c))) {
      const cb = (cpu[0]! + cpu[3]!) / 2;
      const cp = (cpu[1]! + cpu[2]!) / 2;
      console.log(`  cpu (user+sys): unpatched ${cb.toFixed(3)} ms, patched ${cp.toFixed(3)} ms, ratio ${(cp / cb).toFixed(3)}`);
    }
  }
}
