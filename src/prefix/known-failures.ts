/**
 * Which known shared-prefix failures each libmamba release has, as data
 * (evidence: /work/shared/notes/mamba-multiuser.md; upstream mamba-org/mamba issues and PRs named below).
 * Ranges are checked in order; the first whose bounds contain the version wins.
 */
import { compareVersions } from './version.js';

export type FailureId = 'explicit-time-runtimeerror' | 'explicit-time-touch' | 'chmod-pkgs-cache';

export interface KnownFailure {
  id: FailureId;
  /** What users see. */
  message: string;
  /** The call that fails, and why. */
  cause: string;
  upstream: string;
}

export const FAILURES: Record<FailureId, KnownFailure> = {
  'explicit-time-runtimeerror': {
    id: 'explicit-time-runtimeerror',
    message: "RuntimeError: Operation not permitted: '<prefix>/pkgs/cache/<hash>.json'",
    cause: 'ghc::filesystem last_write_time(index, now) sets an explicit time: only the owner may (utimensat EPERM)',
    upstream: 'mamba-org/mamba#488',
  },
  'explicit-time-touch': {
    id: 'explicit-time-touch',
    message: 'filesystem error: cannot set file time: Operation not permitted [<prefix>/pkgs/cache/<hash>.json]',
    cause: 'std::filesystem::last_write_time(index, now) sets an explicit time: only the owner may (utimensat EPERM)',
    upstream: 'mamba-org/mamba#1123, fixed by #2141 in 1.2.0',
  },
  'chmod-pkgs-cache': {
    id: 'chmod-pkgs-cache',
    message: 'critical libmamba filesystem error: cannot set permissions: Operation not permitted [<prefix>/pkgs/cache]',
    cause: 'std::filesystem::permissions(pkgs/cache, 0775) on every refresh: only the owner may chmod (fchmodat EPERM)',
    upstream: 'mamba-org/mamba#3606, #3740, #3840, #4002',
  },
};

export type Verdict = 'affected' | 'not-affected' | 'unknown';

export interface VersionRange {
  /** Inclusive lower bound (none: from the beginning). */
  from?: string;
  /** Exclusive upper bound (none: open-ended). */
  below?: string;
  /** Inclusive upper bound. */
  upTo?: string;
  /** Exclusive lower bound. */
  after?: string;
  verdict: Verdict;
  failures: FailureId[];
  note: string;
}

/** libmamba (and micromamba, which links it) versions. The last known affected release is 2.8.1. */
export const KNOWN_RANGES: VersionRange[] = [
  { below: '0.26', verdict: 'affected', failures: ['explicit-time-runtimeerror'], note: 'libmamba < 0.26 (ghc::filesystem)' },
  { from: '0.26', below: '1.2', verdict: 'affected', failures: ['explicit-time-touch'], note: 'libmamba 0.26 to 1.1.x' },
  { from: '1.2', below: '2.0.0', verdict: 'not-affected', failures: [], note: 'libmamba 1.2 to 1.5.x: no known failure' },
  { from: '2.0.0', upTo: '2.8.1', verdict: 'affected', failures: ['chmod-pkgs-cache'], note: 'libmamba 2.0.0 to 2.8.1' },
  {
    after: '2.8.1',
    verdict: 'unknown',
    failures: ['chmod-pkgs-cache'],
    note: 'newer than 2.8.1, the last release known to fail: not known to be fixed',
  },
];

export interface FailureReport {
  version?: string;
  verdict: Verdict;
  failures: KnownFailure[];
  note: string;
}

/** The known failures of a libmamba version; without a version, "unknown". */
export function failuresFor(version: string | undefined, guess: FailureId[] = []): FailureReport {
  if (!version) {
    return { verdict: 'unknown', failures: guess.map((f) => FAILURES[f]), note: 'version unknown (no conda-meta record)' };
  }
  for (const r of KNOWN_RANGES) {
    if (r.from && compareVersions(version, r.from) < 0) continue;
    if (r.after && compareVersions(version, r.after) <= 0) continue;
    if (r.below && compareVersions(version, r.below) >= 0) continue;
    if (r.upTo && compareVersions(version, r.upTo) > 0) continue;
    return { version, verdict: r.verdict, failures: r.failures.map((f) => FAILURES[f]), note: r.note };
  }
  return { version, verdict: 'unknown', failures: [], note: 'version outside the known table' };
}
