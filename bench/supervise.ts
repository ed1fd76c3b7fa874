/**
 * `npm run bench supervise`: start-up of a fully static stand-in (micromamba 2.x, -static) with the
 * supervisor hook against the same program unhooked, in one hyperfine run, as a second user (the hook does
 * nothing for root). Hooked with `elf add-entry-hook` when this build has it, else with the blob's C linked
 * in (the same code).
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cachedCompiler } from '../src/demo/prefix.js';
import { TEMPLATES_DIR } from '../src/package.js';
import { rulesHeader } from '../src/shim/build.js';
import { hookSource, testLinkedFlags } from '../src/supervisor/build.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const ROOT = '/tmp/mambapatch-bench-supervise-v1';
const USER = { uid: 4102, gid: 4100 };

function hookedPair(): { plain: string; hooked: string; how: string } {
  fs.mkdirSync(ROOT, { recursive: true, mode: 0o755 });
  const demo = path.join(TEMPLATES_DIR, 'demo');
  const req = { name: 'micromamba', args: ['-std=c++17', '-O1', '-DSTANDIN_MAJOR=2', '-static'], sources: [path.join(demo, 'mamba2_main.cpp'), path.join(demo, 'libmamba_standin.cpp')] };
  const plain = cachedCompiler(ROOT, 'g++')(req);
  const help = spawnSync(process.execPath, [CLI, 'elf', '--help'], { encoding: 'utf8' }).stdout;
  if (/^\s*add-entry-hook\b/m.test(help)) {
    const hooked = path.join(path.dirname(plain), 'micromamba.hooked');
    const r = spawnSync(process.execPath, [CLI, 'elf', 'add-entry-hook', plain, '--output', hooked], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`elf add-entry-hook: ${r.stderr}`);
    fs.chmodSync(hooked, 0o755);
    return { plain, hooked, how: 'elf add-entry-hook' };
  }
  const rules = createHash('sha256').update(fs.readFileSync(rulesHeader())).digest('hex').slice(0, 16);
  const obj = cachedCompiler(ROOT, 'gcc')({ name: 'hook.o', args: [...testLinkedFlags('x86_64'), `-DMP_RULES_HASH=${rules}`], sources: [hookSource()] });
  const hooked = cachedCompiler(ROOT, 'g++')({ ...req, name: 'micromamba-hooked', args: [...req.args, '-Wl,-e,mambapatch_hook_entry'], after: [obj] });
  return { plain, hooked, how: 'blob C linked in (no elf add-entry-hook in this build)' };
}

export async function run(): Promise<void> {
  if (spawnSync('hyperfine', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.log('  hyperfine is not installed: skipped');
    return;
  }
  const { plain, hooked, how } = hookedPair();
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
  console.log(`static micromamba stand-in --version, ${runs} runs each (hyperfine -N${asUser ? ', as uid 4102 via setpriv' : ''}); hooked with ${how}`);
  console.log(`  unhooked: wall ${ms(a.mean)} ms, CPU ${ms(a.user + a.system)} ms`);
  console.log(`  hooked:   wall ${ms(b.mean)} ms, CPU ${ms(b.user + b.system)} ms (includes the supervisor process)`);
  console.log(`  added: wall ${ms(b.mean - a.mean)} ms (ratio ${(b.mean / a.mean).toFixed(2)}), CPU ${ms(b.user + b.system - a.user - a.system)} ms (ratio ${((b.user + b.system) / (a.user + a.system)).toFixed(2)})`);
}
