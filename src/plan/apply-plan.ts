/** Computes what `apply` does to a prefix: one target per install, the steps to patch what is not patched. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as os from 'node:os';
import { editElfFile, prepareAdd, prepareEntryHook, type EditReport } from '../elf/index.js';
import { hookBlob } from '../supervisor/blob.js';
import { inPrefix } from '../state/paths.js';
import { MambapatchError } from '../errors.js';
import { originalName, renderLauncher } from '../launcher/launcher.js';
import { parseInterpreter } from '../launcher/shebang.js';
import { hostArch, type Detection, type Install } from '../prefix/detect.js';
import { fileMeta, metaOf, sha256File } from '../state/files.js';
import type { Manifest, ManifestEntry, Method } from '../state/manifest.js';
import { isMambapatchShim, neededName, shimRel, shimSource } from './shim.js';
import type { Plan, Step, TargetStatus } from './types.js';

export interface ApplyPlanInput {
  prefix: string;
  prefixFrom: string;
  detection: Detection;
  manifest: Manifest | null;
  method: 'auto' | Method;
}

/**
 * auto: `supervise` for fully static executables (no library can be loaded into them), `needed` for
 * dynamic ones (a launcher is bypassed after `mamba shell hook`), `launcher` for 1.x console scripts.
 */
export function chooseMethod(inst: Install, requested: 'auto' | Method): Method {
  if (requested !== 'auto') return requested;
  return inst.format === 'script' ? 'launcher' : inst.static ? 'supervise' : 'needed';
}

/** Why `method` cannot serve `inst`, or undefined. */
function methodRefusal(inst: Install, method: Method): string | undefined {
  if (method === 'supervise' && inst.format !== 'elf') return `${inst.entry} is a script; the supervise method hooks an ELF executable (use --method launcher or needed)`;
  if (method !== 'supervise' && inst.static) {
    return `${inst.entry} is fully static: no library can be loaded into it, so the ${method} method cannot work; use --method supervise (the default for it)`;
  }
  if (method !== 'supervise' && path.isAbsolute(inst.entry)) return `${inst.entry} is outside the prefix: only the supervise method patches such executables`;
  return undefined;
}

/** Methods that load the shim library into mamba (the shim must be installed in lib/). */
export const usesShim = (m: Method | undefined): boolean => m === 'needed' || m === 'launcher';

/** The files a method changes for an install. */
export function targetFiles(inst: Install, method: Method): string[] {
  if (method === 'launcher' || inst.format === 'elf') return [inst.entry];
  return inst.libmamba;
}

export function entryFor(manifest: Manifest | null, rel: string): ManifestEntry | undefined {
  return manifest?.entries.find((e) => e.path === rel);
}

/**
 * The state of each target, shared by apply and status. `files` maps each patchable target to the
 * method that would be used.
 */
export function targetStates(prefix: string, detection: Detection, manifest: Manifest | null, requested: 'auto' | Method): TargetStatus[] {
  const out: TargetStatus[] = [];
  const seen = new Set<string>(); // two entry points of one install share libmamba
  for (const inst of detection.installs) {
    const base = {
      install: inst.entry,
      kind: inst.kind,
      version: inst.failures.version,
      versionFrom: inst.versionFrom,
      failures: inst.failures,
      arch: inst.arch,
    };
    if (inst.unsupported) {
      out.push({ ...base, path: inst.entry, state: 'unsupported', why: inst.unsupported });
      continue;
    }
    // What is recorded wins over a new choice: a prefix patched with one method stays so until revert.
    const recorded = manifest?.entries.find((e) => e.install === inst.entry && e.role === 'target');
    const method = recorded && requested === 'auto' ? recorded.method : chooseMethod(inst, requested);
    const refused = methodRefusal(inst, method);
    if (refused && !recorded) {
      out.push({ ...base, path: inst.entry, method, state: 'unsupported', why: refused });
      continue;
    }
    const files = targetFiles(inst, method);
    if (files.length === 0) {
      out.push({ ...base, path: inst.entry, method, state: 'unsupported', why: 'no lib/libmamba.so.N file found for the needed method; use --method launcher' });
      continue;
    }
    for (const rel of files) {
      if (seen.has(rel)) continue;
      seen.add(rel);
      const entry = entryFor(manifest, rel);
      const cur = fileMeta(inPrefix(prefix, rel));
      let state: TargetStatus['state'];
      let why: string;
      if (entry && cur && cur.sha256 === entry.after.sha256) {
        state = 'patched';
        why = `patched with the ${entry.method} method`;
      } else if (entry && cur && entry.before && cur.sha256 !== entry.before.sha256) {
        state = 'stale';
        why = 'changed since apply (mamba updated or reinstalled?): the patch is gone; run apply again';
      } else if (!entry && inst.shimPresent) {
        state = 'untracked';
        why = `carries the shim (${inst.shimPresent}) but mambapatch has no record of it (state removed?)`;
      } else if (inst.failures.verdict === 'not-affected') {
        state = 'not-affected';
        why = inst.failures.note;
      } else {
        state = 'unpatched';
        why = inst.failures.verdict === 'unknown' ? `not patched; ${inst.failures.note}` : `not patched; ${inst.failures.note} fails in shared prefixes`;
      }
      out.push({ ...base, path: rel, method: entry?.method ?? method, state, why });
    }
  }
  return out;
}

export function buildApplyPlan(input: ApplyPlanInput): Plan {
  const { prefix, detection, manifest, method } = input;
  const plan: Plan = { op: 'apply', prefix, prefixFrom: input.prefixFrom, method, targets: [], steps: [], notes: [], warnings: [] };
  for (const s of detection.skipped) plan.notes.push(`${s.path}: ${s.reason}`);
  plan.targets = targetStates(prefix, detection, manifest, method);
  const shimRelPath = shimRel();
  const shimAbs = path.join(prefix, shimRelPath);
  const archs = new Set<string>();
  const targetSteps: Step[] = [];
  for (const t of plan.targets) {
    const inst = detection.installs.find((i) => i.entry === t.install)!;
    if (t.state === 'patched' || t.state === 'untracked') {
      if (t.arch && usesShim(t.method)) archs.add(t.arch);
      if (t.method && method !== 'auto' && t.method !== method) {
        plan.warnings.push(`${t.path} is patched with the ${t.method} method; run revert first to switch to ${method}`);
      }
      if (t.state === 'untracked') plan.warnings.push(`${t.path}: ${t.why}; left as it is`);
      continue;
    }
    if (t.state !== 'unpatched' && t.state !== 'stale') continue;
    const m = t.method!;
    const abs = inPrefix(prefix, t.path);
    const cur = fileMeta(abs);
    if (!cur) throw new MambapatchError('not a regular file', { file: abs });
    if (m === 'supervise' || m === 'needed') {
      // Both edit the ELF file itself: the entry hook, or the shim as its first DT_NEEDED. The edit
      // streams into a private temporary file (memory stays bounded whatever the file's size); executing
      // the plan copies it into place.
      const prepared = preparedOutput();
      let res: EditReport;
      try {
        res = editElfFile(
          abs,
          (elf) => (m === 'supervise' ? prepareEntryHook(elf, (arch) => hookBlob(arch).bytes, { file: abs }) : prepareAdd(elf, neededName(t.path), { first: true, file: abs })),
          { output: prepared },
        );
      } catch (e) {
        // The private copy is ours, not the user's: name the file being patched and where the copy went.
        if (e instanceof MambapatchError && e.file === prepared) {
          throw new MambapatchError(`${e.reason} (its edited copy, in ${path.dirname(prepared)})`, { file: abs });
        }
        throw e;
      }
      if (!res.changed) {
        fs.rmSync(prepared, { force: true });
        plan.warnings.push(`${t.path}: ${res.message}`);
        continue;
      }
      targetSteps.push({
        action: m === 'supervise' ? 'add-entry-hook' : 'add-needed',
        path: t.path,
        role: 'target',
        method: m,
        install: t.install,
        before: cur,
        current: cur,
        after: { sha256: sha256File(prepared), size: fs.statSync(prepared).size, mode: cur.mode, uid: cur.uid, gid: cur.gid },
        detail: m === 'supervise' ? `add the supervisor entry hook (${res.message})` : `add ${neededName(t.path)} as the first DT_NEEDED (${res.message})`,
        source: prepared,
      });
    } else {
      if (inst.format === 'elf') {
        plan.warnings.push(`${t.path}: a launcher is bypassed once \`mamba shell hook\` has been evaluated (it runs the real binary); --method needed does not have that gap`);
      }
      const origRel = originalName(t.path);
      const origAbs = path.join(prefix, origRel);
      const origEntry = entryFor(manifest, origRel);
      const origCur = fileMeta(origAbs);
      if ((origCur || fs.existsSync(origAbs)) && !origEntry) {
        throw new MambapatchError(`the name for the kept original is taken by a file mambapatch did not create; move it away first`, { file: origAbs });
      }
      const text = fs.readFileSync(abs);
      const interpreter = inst.format === 'script' ? parseInterpreter(text.subarray(0, 4096).toString('utf8')) : undefined;
      const launcher = Buffer.from(
        renderLauncher({ shim: shimAbs, original: origAbs, elf: inst.format === 'elf', interpreter }),
      );
      targetSteps.push({
        action: 'keep-original',
        path: origRel,
        role: 'kept-original',
        method: m,
        install: t.install,
        before: origEntry ? origEntry.before : null,
        current: origCur,
        after: { ...cur },
        detail: `keep the original ${t.path} as ${origRel} (a hard link)`,
        linkFrom: t.path,
      });
      targetSteps.push({
        action: 'write-launcher',
        path: t.path,
        role: 'target',
        method: m,
        install: t.install,
        before: cur,
        current: cur,
        after: metaOf(launcher, cur),
        detail: `replace ${t.path} with a launcher that preloads ${shimRelPath} and runs ${origRel}`,
        data: launcher,
      });
    }
    if (t.arch && usesShim(m)) archs.add(t.arch);
  }
  if (archs.size > 1) throw new MambapatchError(`mamba installs of several architectures (${[...archs].join(', ')}) in one prefix`, { file: prefix });
  const needShim = plan.targets.some((t) => t.state === 'patched' && usesShim(t.method)) || targetSteps.some((s) => usesShim(s.method));
  if (needShim) {
    const arch = [...archs][0] ?? hostArch();
    const shim = shimSource(arch);
    plan.shim = { source: shim.source, version: shim.version, arch };
    const cur = fileMeta(shimAbs);
    const entry = entryFor(manifest, shimRelPath);
    const lib = fs.statSync(path.join(prefix, 'lib'), { throwIfNoEntry: false });
    if (!lib?.isDirectory()) throw new MambapatchError('no lib/ directory for the shim (is this a conda prefix?)', { file: prefix });
    const after = metaOf(shim.data, { mode: 0o755, uid: lib.uid, gid: lib.gid });
    if (!(cur && cur.sha256 === after.sha256 && entry)) {
      // A file already there is kept as an original unless it is a mambapatch shim (ours, any version).
      const before = entry ? entry.before : cur && !isMambapatchShim(shimAbs) ? cur : null;
      plan.steps.push({
        action: 'install-shim',
        path: shimRelPath,
        role: 'shim',
        method: targetSteps.find((s) => usesShim(s.method))?.method ?? 'needed',
        install: '*',
        before,
        current: cur,
        after,
        detail: `${!cur ? 'install' : cur.sha256 === after.sha256 ? 'record' : 'update'} the shim ${shim.version} (${arch}) from ${shim.source}`,
        data: shim.data,
      });
    }
  }
  plan.steps.push(...targetSteps);
  for (const t of plan.targets) {
    if (t.state === 'unsupported') plan.warnings.push(`${t.path}: ${t.why}`);
  }
  return plan;
}

/** A file in a private temporary directory for an edited output, removed when this process exits. */
function preparedOutput(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mambapatch-edit-'));
  process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return path.join(dir, 'edited');
}
