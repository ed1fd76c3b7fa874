/**
 * `mambapatch demo`: on a machine without mamba, build three throwaway shared prefixes (mamba 1.x and 2.x
 * stand-ins, and a fully static micromamba fixed by the supervise method), show a second member of the group hitting the two real errors, apply, show both working,
 * revert, show the errors return, and clean up. Switching users needs root; without it the demo says so
 * and shows the rest.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { apply, revert, status } from '../apply/core.js';
import { renderRun, renderStatus } from '../apply/render.js';
import { paint, say, type OutputOptions } from '../output.js';
import { superviseSupport } from '../supervisor/kernel.js';
import { buildPrefix, cachedCompiler } from './prefix.js';

/** The shared install's cast: the owner and a second member of its group (numeric, no passwd entries). */
export const DEMO_OWNER = { uid: 4101, gid: 4100 };
export const DEMO_MEMBER = { uid: 4102, gid: 4100 };

export interface DemoOptions extends OutputOptions {
  keep?: boolean;
}

interface Run {
  status: number | null;
  out: string;
}

export function runDemo(opts: DemoOptions): number {
  const root = process.getuid?.() === 0;
  const canSwitch = root && hasSetpriv();
  const heading = (t: string) => say(opts, `\n${paint(`== ${t}`, 'bold')}`);
  const base = fs.mkdtempSync('/tmp/mambapatch-demo-');
  fs.chmodSync(base, 0o755);
  const cache = path.join('/tmp', `mambapatch-demo-cache-${process.getuid?.() ?? 0}`);
  fs.mkdirSync(cache, { recursive: true, mode: 0o755 });
  const supervise = superviseSupport();
  const prefixes = [
    { label: 'mamba 1.x', prefix: path.join(base, 'mambaforge'), spec: { mamba1: true }, entry: 'bin/mamba', error: 'cannot set file time', fixable: true },
    { label: 'mamba 2.x', prefix: path.join(base, 'miniforge3'), spec: { mamba2: true }, entry: 'bin/mamba', error: 'cannot set permissions', fixable: true },
    {
      label: 'static micromamba 2.x',
      prefix: path.join(base, 'micromamba'),
      spec: { micromamba: 'static' as const },
      entry: 'bin/micromamba',
      error: 'cannot set permissions',
      fixable: supervise.supported,
    },
  ];
  let ok = true;
  const expect = (cond: boolean, what: string) => {
    if (!cond) {
      ok = false;
      say(opts, paint(`  unexpected: ${what}`, 'red'));
    }
  };
  try {
    heading('Building three throwaway shared prefixes (stand-ins compiled with g++ from templates/demo)');
    for (const p of prefixes) {
      buildPrefix(p.prefix, { ...p.spec, owner: canSwitch ? DEMO_OWNER : undefined }, cachedCompiler(cache));
      say(opts, `  ${p.label}: ${p.prefix}${canSwitch ? `  (owner uid ${DEMO_OWNER.uid}, group ${DEMO_OWNER.gid}, group-writable, setgid directories)` : ''}`);
    }
    if (!canSwitch) {
      say(
        opts,
        paint(
          `\n  Switching users needs root${root ? ' and setpriv (util-linux)' : ''}: the part where a second member of the group hits ` +
            `the errors is skipped. Run \`sudo npx mambapatch demo\` to see it. Showing apply, status and revert on the demo prefixes.`,
          'yellow',
        ),
      );
    }
    if (!supervise.supported) say(opts, paint(`\n  supervise: ${supervise.why}; the static micromamba stays broken after apply.`, 'yellow'));
    const install = (p: (typeof prefixes)[number]): Run => runMamba(path.join(p.prefix, p.entry), canSwitch);
    const show = (p: (typeof prefixes)[number], r: Run) => {
      say(opts, `  $ ${canSwitch ? `(as uid ${DEMO_MEMBER.uid}) ` : ''}${p.prefix}/${p.entry} install`);
      for (const l of r.out.trimEnd().split('\n')) say(opts, `    ${l}`);
      say(opts, `    ${paint(`exit status ${r.status}`, r.status === 0 ? 'green' : 'red')}`);
    };
    if (canSwitch) {
      heading(`Before: uid ${DEMO_MEMBER.uid}, a second member of group ${DEMO_MEMBER.gid}, runs mamba install`);
      for (const p of prefixes) {
        const r = install(p);
        show(p, r);
        expect(r.status !== 0 && r.out.includes(p.error), `${p.label} should fail with "${p.error}"`);
      }
    }
    for (const p of prefixes) {
      heading(`mambapatch apply ${p.prefix}`);
      renderRun(apply(p.prefix), { ...opts, verb: 'apply' });
    }
    heading(canSwitch ? `After apply: the same member runs mamba install again` : 'After apply: the stand-ins run (as you)');
    for (const p of prefixes) {
      const r = install(p);
      show(p, r);
      if (p.fixable || !canSwitch) expect(r.status === 0, `${p.label} should succeed after apply`);
    }
    for (const p of prefixes.slice(1)) {
      heading(`mambapatch status ${p.prefix}`);
      renderStatus(status(p.prefix), opts);
    }
    for (const p of prefixes) {
      heading(`mambapatch revert ${p.prefix}`);
      renderRun(revert(p.prefix), { ...opts, verb: 'revert' });
    }
    if (canSwitch) {
      heading('After revert: the errors are back');
      for (const p of prefixes) {
        const r = install(p);
        show(p, r);
        expect(r.status !== 0 && r.out.includes(p.error), `${p.label} should fail again after revert`);
      }
    }
  } finally {
    if (opts.keep) say(opts, `\nKept the demo prefixes in ${base}`);
    else fs.rmSync(base, { recursive: true, force: true });
  }
  heading(ok ? 'Done: the demo prefixes are removed.' : 'Done, with unexpected results (see above).');
  if (ok) say(opts, '  On a real shared install: `mambapatch apply /path/to/prefix` (as its owner or root); undo with `mambapatch revert`.');
  return ok ? 0 : 1;
}

function hasSetpriv(): boolean {
  return spawnSync('setpriv', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** Runs the stand-in's `install`, as the second member when we can switch users. */
function runMamba(exe: string, asMember: boolean): Run {
  const env = { PATH: '/usr/bin:/bin', LANG: 'C', PYTHONDONTWRITEBYTECODE: '1' };
  const r = asMember
    ? spawnSync('setpriv', [`--reuid=${DEMO_MEMBER.uid}`, `--regid=${DEMO_MEMBER.gid}`, '--clear-groups', '--', exe, 'install'], { encoding: 'utf8', env, cwd: '/' })
    : spawnSync(exe, ['install'], { encoding: 'utf8', env, cwd: '/' });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}` };
}
