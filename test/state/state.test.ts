/** State files: the lock, trust, the manifest's validation and the backup round trip. */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/state/lock.js';
import { statePaths } from '../../src/state/paths.js';
import { checkTrusted } from '../../src/state/trust.js';
import { readManifest } from '../../src/state/manifest.js';
import { keepOriginal, restoreOriginal, withBackupFile, writeBackup } from '../../src/state/backup.js';
import { fileMeta } from '../../src/state/files.js';
import { isRoot } from '../helpers/env.js';
import { worldTmp } from '../helpers/tmp.js';

const t = worldTmp('state');
afterAll(() => t.cleanup());
let n = 0;
const fresh = () => {
  const prefix = path.join(t.dir, `p${n++}`);
  fs.mkdirSync(prefix);
  return { prefix, p: statePaths(prefix) };
};

describe('lock', () => {
  it('is exclusive, waits for a live holder and times out naming it', () => {
    const { p } = fresh();
    const a = acquireLock(p);
    let waited = '';
    expect(() => acquireLock(p, { timeoutMs: 300, onWait: (h) => (waited = h) })).toThrow(/another mambapatch run holds the lock \(pid \d+/);
    expect(waited).toMatch(new RegExp(`pid ${process.pid}`));
    a.release();
    acquireLock(p, { timeoutMs: 300 }).release();
  });
  it('breaks the lock of a dead process', async () => {
    const { p } = fresh();
    const child = spawn('sleep', ['0']);
    await new Promise((r) => child.on('close', r));
    fs.mkdirSync(p.dir);
    fs.writeFileSync(p.lock, JSON.stringify({ pid: child.pid, host: (await import('node:os')).hostname(), started: '' }));
    acquireLock(p, { timeoutMs: 300 }).release();
    expect(fs.existsSync(p.lock)).toBe(false);
  });
});

describe('trust', () => {
  it('refuses group- or other-writable state, symlinks, and foreign owners', () => {
    const { prefix, p } = fresh();
    fs.mkdirSync(p.dir, { mode: 0o755 });
    fs.chmodSync(p.dir, 0o755);
    checkTrusted(p);
    fs.chmodSync(p.dir, 0o775);
    expect(() => checkTrusted(p)).toThrow(/mode 0775 lets group or others write it/);
    fs.chmodSync(p.dir, 0o755);
    fs.symlinkSync('/etc/passwd', p.manifest);
    expect(() => checkTrusted(p)).toThrow(/symbolic link/);
    fs.rmSync(p.manifest);
    if (isRoot) {
      fs.writeFileSync(p.manifest, '{}', { mode: 0o644 });
      fs.chownSync(p.manifest, 4103, 4103);
      expect(() => checkTrusted(p)).toThrow(/owned by uid 4103/);
    }
    expect(prefix).toBeTruthy();
  });
});

describe('manifest', () => {
  it('rejects broken JSON and unsafe paths', () => {
    const { p } = fresh();
    fs.mkdirSync(p.dir);
    fs.writeFileSync(p.manifest, '{');
    expect(() => readManifest(p.manifest)).toThrow(/not valid JSON/);
    fs.writeFileSync(p.manifest, JSON.stringify({ format: 1, entries: [{ path: '../../etc/passwd' }] }));
    expect(() => readManifest(p.manifest)).toThrow(/unsafe path/);
    expect(readManifest(path.join(p.dir, 'none.json'))).toBeNull();
  });
});

describe('originals and backup.tar', () => {
  it('keeps the original inode, archives it, and restores from the archive when the kept copy is gone', () => {
    const { prefix, p } = fresh();
    fs.mkdirSync(path.join(prefix, 'bin'));
    fs.mkdirSync(p.dir);
    const f = path.join(prefix, 'bin', 'mamba');
    fs.writeFileSync(f, 'original bytes\n', { mode: 0o751 });
    fs.chmodSync(f, 0o751);
    const before = fileMeta(f)!;
    expect(keepOriginal(prefix, p, 'bin/mamba')).toBe('link');
    writeBackup(p);
    expect(withBackupFile(p, 'bin/mamba', (b) => b && fs.readFileSync(b, 'utf8'))).toBe('original bytes\n');
    fs.writeFileSync(path.join(prefix, 'bin', 'tmp'), 'patched');
    fs.renameSync(path.join(prefix, 'bin', 'tmp'), f);
    expect(restoreOriginal(prefix, p, 'bin/mamba', before)).toBe('renamed');
    expect(fileMeta(f)).toMatchObject({ sha256: before.sha256, mode: 0o751 });
    fs.writeFileSync(f, 'patched again');
    expect(restoreOriginal(prefix, p, 'bin/mamba', before)).toBe('written');
    expect(fileMeta(f)).toMatchObject({ sha256: before.sha256, mode: 0o751, uid: before.uid });
    // A tampered archive is refused, not restored.
    fs.writeFileSync(f, 'patched again');
    fs.rmSync(p.backup);
    expect(() => restoreOriginal(prefix, p, 'bin/mamba', before)).toThrow(/no intact backup/);
  });
});
