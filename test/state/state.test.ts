/** State files: the lock, trust, the manifest's validation, the backup round trip and backup.tar's format. */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tar from 'tar';
import { afterAll, describe, expect, it } from 'vitest';
import { acquireLock } from '../../src/state/lock.js';
import { statePaths } from '../../src/state/paths.js';
import { checkTrusted } from '../../src/state/trust.js';
import { readManifest } from '../../src/state/manifest.js';
import { keepOriginal, restoreOriginal, withBackupFile, writeBackup } from '../../src/state/backup.js';
import { fileMeta } from '../../src/state/files.js';
import { extractTarFile, writeTar } from '../../src/state/tarstream.js';
import { isRoot, missing } from '../helpers/env.js';
import { underSizeLimit } from '../helpers/fsize.js';
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

describe.skipIf(missing({ tools: ['tar', 'prlimit'] }))('backup.tar format (src/state/tarstream.ts)', () => {
  /** Files with what an archive must carry: a long path (pax), an empty file, one over 1 MiB, odd sizes. */
  function tree(): { root: string; files: Record<string, Buffer> } {
    const root = path.join(t.dir, `tree${n++}`);
    const long = `_outside/opt/${'deep-directory/'.repeat(12)}bin/micromamba`;
    const files: Record<string, Buffer> = {
      'bin/mamba': Buffer.from('#!/bin/sh\necho mamba\n'),
      'lib/empty': Buffer.alloc(0),
      'lib/libmamba.so.2': Buffer.from(Array.from({ length: (1 << 20) + 777 }, (_, i) => (i * 7919) % 251)),
      [long]: Buffer.from('a file whose path needs a pax header\n'),
    };
    for (const [rel, data] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
      fs.writeFileSync(path.join(root, rel), data, { mode: 0o755 });
    }
    return { root, files };
  }

  it('reads back every file it writes, and GNU tar and the tar package read the same bytes', () => {
    const { root, files } = tree();
    const archive = path.join(t.dir, `ours${n++}.tar`);
    const fd = fs.openSync(archive, 'w');
    writeTar(fd, root, Object.keys(files));
    fs.closeSync(fd);
    for (const [rel, data] of Object.entries(files)) {
      const out = path.join(t.dir, `x${n++}`);
      expect(extractTarFile(archive, rel, out), rel).toBe(true);
      expect(fs.readFileSync(out).equals(data), rel).toBe(true);
    }
    expect(extractTarFile(archive, 'bin/conda', path.join(t.dir, `x${n++}`))).toBe(false);
    // GNU tar lists the same paths and sizes; the tar package extracts the same bytes.
    const listed = execFileSync('tar', ['-tvf', archive], { encoding: 'utf8' }).trim().split('\n');
    expect(listed.map((l) => l.split(/\s+/).slice(5).join(' '))).toEqual(Object.keys(files));
    const dir = path.join(t.dir, `gnu${n++}`);
    fs.mkdirSync(dir);
    tar.x({ sync: true, file: archive, cwd: dir });
    for (const [rel, data] of Object.entries(files)) expect(fs.readFileSync(path.join(dir, rel)).equals(data), rel).toBe(true);
  });

  it('reads archives the tar package wrote (backup.tar of releases up to 0.1.0)', () => {
    const { root, files } = tree();
    const archive = path.join(t.dir, `theirs${n++}.tar`);
    tar.c({ sync: true, file: archive, cwd: root, portable: false }, Object.keys(files));
    for (const [rel, data] of Object.entries(files)) {
      const out = path.join(t.dir, `x${n++}`);
      expect(extractTarFile(archive, rel, out), rel).toBe(true);
      expect(fs.readFileSync(out).equals(data), rel).toBe(true);
    }
  });

  it('refuses what is not an archive, and a write that cannot finish fails instead of leaving a shorter archive', () => {
    const junk = path.join(t.dir, `junk${n++}.tar`);
    fs.writeFileSync(junk, Buffer.alloc(2048, 0x41));
    expect(() => extractTarFile(junk, 'bin/mamba', path.join(t.dir, `x${n++}`))).toThrow(/not a tar archive/);
    // A file size limit makes writes short, then fail (EFBIG). It cuts the last block off: a writer that ignored a short write would end "successfully".
    const { root, files } = tree();
    const whole = path.join(t.dir, `whole${n++}.tar`);
    const wfd = fs.openSync(whole, 'w');
    writeTar(wfd, root, Object.keys(files));
    fs.closeSync(wfd);
    const limit = fs.statSync(whole).size - 512;
    const archive = path.join(t.dir, `short${n++}.tar`);
    const script = `import { writeTar } from ${JSON.stringify(new URL('../../dist/src/state/tarstream.js', import.meta.url).href)};
      import * as fs from 'node:fs';
      const fd = fs.openSync(${JSON.stringify(archive)}, 'w');
      try { writeTar(fd, ${JSON.stringify(root)}, ${JSON.stringify(Object.keys(files))}); console.log('wrote'); } catch (e) { console.log('threw', e.code); }`;
    const r = underSizeLimit(limit, process.execPath, ['--input-type=module', '-e', script]);
    expect(r.stdout.trim(), r.stderr).toBe('threw EFBIG');
  });
});
