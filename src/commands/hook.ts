import type { Command } from 'commander';
import { installHook, hookStatus, uninstallHook } from '../hook/install.js';
import { hookScript } from '../hook/script.js';
import { DEFAULT_UNIT_DIR } from '../hook/systemd.js';
import { resolvePrefix } from '../hook/apply-api.js';
import { printJson, say, type OutputOptions } from '../output.js';
import { action, withCommonFlags } from './common.js';

interface HookOptions extends OutputOptions {
  systemd?: boolean;
  unitDir?: string;
}

const prefixOf = (arg: string | undefined) => resolvePrefix(arg).prefix;

export function register(program: Command): void {
  const hook = program
    .command('hook')
    .description('keep the fix through mamba updates: a re-apply script, self-heal after mamba runs, systemd units');

  withCommonFlags(
    hook
      .command('script [prefix]')
      .description('print a POSIX sh script that re-applies the fix idempotently (for post_install, Ansible, Dockerfiles)'),
  ).action(
    action((arg: string | undefined, opts: HookOptions) => {
      const prefix = prefixOf(arg);
      const script = hookScript(prefix);
      if (opts.json) printJson({ ok: true, prefix, script });
      else process.stdout.write(script);
    }),
  );

  const unitDir = (c: Command) =>
    c
      .option('--systemd', 'also write (or remove) a systemd .path unit watching conda-meta/ and a .service running the hook')
      .option('--unit-dir <dir>', 'where the systemd units go', DEFAULT_UNIT_DIR);

  withCommonFlags(
    unitDir(
      hook
        .command('install [prefix]')
        .description('write <prefix>/.mambapatch/hook.sh: the shim re-applies the fix after a mamba run that replaced a patched file'),
    ),
  ).action(
    action((arg: string | undefined, opts: HookOptions) => {
      const r = installHook(prefixOf(arg), opts);
      if (opts.json) return printJson({ ok: true, ...r });
      say(opts, r.changed ? `installed ${r.hook}` : `already installed: ${r.hook}`);
      if (r.systemd) {
        for (const u of r.systemd.units) say(opts, `${u.changed ? 'wrote' : 'unchanged'} ${u.file}`);
        say(opts, `to activate: ${r.systemd.next}`);
      }
    }),
  );

  withCommonFlags(
    unitDir(hook.command('uninstall [prefix]').description('remove the hook (and with --systemd, the units)')),
  ).action(
    action((arg: string | undefined, opts: HookOptions) => {
      const r = uninstallHook(prefixOf(arg), opts);
      if (opts.json) return printJson({ ok: true, ...r });
      if (r.removed.length === 0) say(opts, 'nothing to remove');
      for (const f of r.removed) say(opts, `removed ${f}`);
      if (r.systemd) say(opts, `then: ${r.systemd.next}`);
    }),
  );

  withCommonFlags(
    hook
      .command('status [prefix]')
      .description('show whether the hook is installed and trusted, the watched files, and the systemd units')
      .option('--unit-dir <dir>', 'where to look for systemd units', DEFAULT_UNIT_DIR),
  ).action(
    action((arg: string | undefined, opts: HookOptions) => {
      const s = hookStatus(prefixOf(arg), opts);
      if (opts.json) return printJson({ ok: true, ...s });
      const h = s.hook;
      say(opts, `prefix: ${s.prefix}`);
      if (!h.installed) say(opts, `hook: not installed (${h.path})`);
      else {
        const notes = [h.ours ? (h.current ? 'current' : 'outdated: run `mambapatch hook install` again') : 'not written by mambapatch'];
        notes.push(h.trusted ? 'trusted by the shim' : `NOT trusted by the shim: ${h.why}`);
        say(opts, `hook: installed ${h.path} (mode ${h.mode}, uid ${h.uid}; ${notes.join('; ')})`);
      }
      if (!s.watch.present) say(opts, `watch: none (${s.watch.path}); run mambapatch apply first`);
      else {
        say(opts, `watch: ${s.watch.files.length} file(s)`);
        for (const f of s.watch.files) say(opts, `  ${f.path}${f.exists ? '' : ' (missing)'}`);
      }
      const present = s.systemd.units.filter((u) => u.present);
      if (present.length === 0) say(opts, `systemd: no units in ${s.systemd.unitDir}`);
      else for (const u of present) say(opts, `systemd: ${u.file}${u.name.endsWith('.path') ? (s.systemd.enabled ? ' (enabled)' : ' (not enabled)') : ''}`);
    }),
  );
}
