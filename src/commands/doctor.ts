import type { Command } from 'commander';
import { CHECKS, applyFixes, plannedFixes, runDoctor, type DoctorReport } from '../doctor/index.js';
import { renderActions } from '../doctor/fixes.js';
import { resolvePrefix } from '../hook/apply-api.js';
import { EXIT, MambapatchError, UsageError } from '../errors.js';
import { paint, printJson, say, type OutputOptions } from '../output.js';
import { action, withCommonFlags } from './common.js';

interface DoctorOptions extends OutputOptions {
  list?: boolean;
  fix?: boolean;
  yes?: boolean;
}

const COLOUR = { ok: 'green', warning: 'yellow', problem: 'red' } as const;

function render(opts: DoctorOptions, r: DoctorReport): void {
  say(opts, `mambapatch doctor: ${r.prefix} (owner uid ${r.owner}, group ${r.group})`);
  const width = Math.max(...r.checks.map((c) => c.name.length));
  for (const c of r.checks) {
    say(opts, `  ${paint(c.status.padEnd(7), COLOUR[c.status])}  ${c.name.padEnd(width)}  ${c.finding}`);
    if (c.fix && c.status !== 'ok') say(opts, `  ${' '.repeat(7)}  ${' '.repeat(width)}  fix: ${c.fix}`);
  }
  const { ok, warning, problem } = r.summary;
  say(opts, `${ok} ok, ${warning} warning(s), ${problem} problem(s)`);
}

const exitOf = (r: DoctorReport) => (r.summary.problem > 0 ? EXIT.CHECK_FAILED : EXIT.OK);

export function register(program: Command): void {
  withCommonFlags(
    program
      .command('doctor [prefix]')
      .description("diagnose a shared prefix's permissions, configuration and the fix (exit 3 when a problem is found)")
      .option('--list', 'list the checks and exit')
      .option('--fix', 'show the safe permission fixes (chgrp, chmod g+w/g+s/-t) it would make; with --yes, make them')
      .option('--yes', 'with --fix: make the changes (as the prefix owner or root)'),
  ).action(
    action(async (arg: string | undefined, opts: DoctorOptions) => {
      if (opts.yes && !opts.fix) throw new UsageError('--yes goes with --fix');
      if (opts.list) {
        const checks = CHECKS.map(({ name, description }) => ({ name, description }));
        if (opts.json) return printJson({ ok: true, checks });
        const width = Math.max(...checks.map((c) => c.name.length));
        for (const c of checks) say(opts, `${c.name.padEnd(width)}  ${c.description}`);
        return;
      }
      const prefix = resolvePrefix(arg).prefix;
      const report = await runDoctor(prefix);
      if (!opts.fix) {
        if (opts.json) printJson({ ok: report.summary.problem === 0, ...report });
        else render(opts, report);
        return exitOf(report);
      }
      const actions = plannedFixes(report);
      if (!opts.yes) {
        const commands = actions.map((a) => renderActions([a]));
        if (opts.json) printJson({ ok: report.summary.problem === 0, ...report, fix: { dryRun: true, commands } });
        else {
          render(opts, report);
          say(opts, commands.length ? '--fix would run (add --yes to do it):' : '--fix: no safe permission fix to make');
          for (const c of commands) say(opts, `  ${c}`);
        }
        return EXIT.OK;
      }
      const uid = process.getuid?.() ?? 0;
      if (uid !== 0 && uid !== report.owner) {
        throw new MambapatchError(`only the prefix owner (uid ${report.owner}) or root may fix its permissions; you are uid ${uid}`, { file: prefix });
      }
      const outcomes = applyFixes(actions);
      const after = await runDoctor(prefix);
      if (opts.json) {
        printJson({ ok: after.summary.problem === 0, ...after, fix: { dryRun: false, outcomes, before: report.summary } });
      } else {
        for (const o of outcomes) say(opts, `${o.result.padEnd(7)}  ${o.command}${o.why ? ` (${o.why})` : ''}`);
        if (outcomes.length === 0) say(opts, 'no safe permission fix to make');
        render(opts, after);
      }
      return exitOf(after);
    }),
  );
}
