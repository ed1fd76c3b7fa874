/**
 * `npm run bench supervise`: start-up of a fully static stand-in (micromamba 2.x, -static) with the
 * supervisor hook against the same program unhooked, in one hyperfine run, as a second user (the hook does
 * nothing for root), hooked with `elf add-entry-hook`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedCompiler } from '../src/demo/prefix.js';
import { TEMPLATES_DIR } from '../src/package.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const ROOT = '/tmp/mambapatch-bench-supervise-v1';
const USER = { uid: 4102, gid: 4100 };

function hookedPair(): { plain: string; hooked: string } {
  fs.mkdirSync(ROOT, { recursive: true, mode: 0o755 });
  const demo = path.join(TEMPLATES_DIR, 'demo');
  const plain = cachedCompiler(ROOT, 'g++')({
    name: 'micromamba',
    args: ['-std=c++17', '-O1', '-DSTANDIN_MAJOR=2', '-static'],
    sources: [path.join(demo, 'mamba2_main.cpp'), path.join(demo, 'libmamba_standin.cpp')],
  });
  const hooked = path.join(ROOT, 'micromamba.hooked');
  fs.rmSync(hooked, { force: true }); // hooked again each run: the blob may have changed
  const r = spawnSync(process.execPath, [CLI, 'elf', 'add-entry-hook', plain, '--output', hooked], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`elf add-entry-hook: ${r.stderr}`);
  fs.chmodSync(hooked, 0o755);
  return { plain, hooked };
}

export async function run(): Promise<void> {
  if (spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.log('  hyperfine is not installed: skipped');
    return;
  }
  const { plain, hooked } = hookedPair();
  const asUser = process.getuid?.() === 0 ? `setpriv --reuid=${USER.uid} --regid=${USER.gid} --clear-groups -- ` : '';
  const runs = process.env.BENCH_LAUNCH_RUNS ?? '300';
  const out = path.join(ROOT, 'hyperfine.json');
  const r = spawnSync(
    'hyperfine',
    ['-N', '--warmup', '30', '--runs', runs, '--export-json', out, `${asUser}${plain} --version`, `${asUser}${hooked} --version`],
    { stdio: 'ignore' },
  );
  if (r.status !== 0) throw new Error('hyperfine failed');
  const [a, b] = (JSON.parse(fs.readFileSync(out, 'utf8')) as { results: { mean: number; user: number; system: number }[] }).results as [
    { mean: number; user: number; system: number },
    { mean: number; user: number; system: number },
  ];
  const ms = (s: number) => (s * 1000).toFixed(2);
  console.log(`static micromamba stand-in --version, ${runs} runs each (hyperfine -N${asUser ? ', as uid 4102 via setpriv' : ''})`);
  console.log(`  unhooked: wall ${ms(a.mean)} ms, CPU ${ms(a.user + a.system)} ms`);
  console.log(`  hooked:   wall ${ms(b.mean)} ms, CPU ${ms(b.user + b.system)} ms (includes the supervisor process)`);
  console.log(`  added: wall ${ms(b.mean - a.mean)} ms (ratio ${(b.mean / a.mean).toFixed(2)}), CPU ${ms(b.user + b.system - a.user - a.system)} ms (ratio ${((b.user + b.system) / (a.user + a.system)).toFixed(2)})`);
}
