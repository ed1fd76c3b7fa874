/**
 * backup.tar, streamed: regular files written into a tar archive and read back out of it through one fixed
 * buffer, whatever their size. The `tar` package's synchronous packer and unpacker keep every chunk of a
 * file alive until they finish (a 160 MiB original cost `apply` 165 MiB more), and its synchronous file
 * writer ignores short writes (a full disk left a truncated archive behind a successful apply). The format
 * is still the `tar` package's: its Header and Pax classes encode and decode every header (ustar, with a pax
 * header where a field does not fit), so archives written before read back the same way.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Header, Pax } from 'tar';
import { writeAllAt } from '../fsutil/atomic.js';

const BLOCK = 512;
const CHUNK = 1 << 20;
/** No extended header of ours comes near this; a larger one is not a backup we wrote. */
const MAX_EXTENDED = 1 << 20;

/** Reads exactly `len` bytes at `pos` into `buf`, or throws naming `file`. */
function readExactly(fd: number, buf: Buffer, len: number, pos: number, file: string): void {
  for (let done = 0; done < len; ) {
    const n = fs.readSync(fd, buf, done, len - done, pos + done);
    if (n === 0) throw new Error(`${file}: ends early (at byte ${pos + done})`);
    done += n;
  }
}

const padding = (size: number): number => (BLOCK - (size % BLOCK)) % BLOCK;

/** Writes the files `rels` (relative to `root`) as a tar archive into `fd`, from offset 0. */
export function writeTar(fd: number, root: string, rels: string[]): void {
  const buf = Buffer.alloc(CHUNK);
  let pos = 0;
  for (const rel of rels) {
    const abs = path.join(root, rel);
    const src = fs.openSync(abs, 'r');
    try {
      const st = fs.fstatSync(src);
      const fields = { path: rel, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: st.size, mtime: st.mtime, type: 'File' as const, uname: '', gname: '' };
      const header = Buffer.alloc(BLOCK);
      const h = new Header(fields);
      h.encode(header);
      if (h.needPax) pos = writeAllAt(fd, new Pax(fields).encode(), pos);
      pos = writeAllAt(fd, header, pos);
      for (let off = 0; off < st.size; ) {
        const n = Math.min(CHUNK, st.size - off);
        readExactly(src, buf, n, off, abs);
        pos = writeAllAt(fd, buf.subarray(0, n), pos);
        off += n;
      }
      pos = writeAllAt(fd, Buffer.alloc(padding(st.size)), pos);
    } finally {
      fs.closeSync(src);
    }
  }
  writeAllAt(fd, Buffer.alloc(2 * BLOCK), pos);
}

/**
 * Copies the regular file `rel` out of the archive `file` into a new file `dest` (mode 0600); returns false
 * when the archive holds no such file. Throws on an archive that is not one.
 */
export function extractTarFile(file: string, rel: string, dest: string): boolean {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    const block = Buffer.alloc(BLOCK);
    let ex: Pax | undefined;
    let gex: Pax | undefined;
    for (let pos = 0; pos + BLOCK <= size; ) {
      readExactly(fd, block, BLOCK, pos, file);
      if (block.every((b) => b === 0)) return false; // the end-of-archive blocks
      const h = new Header(block, 0, ex, gex);
      if (!h.cksumValid) throw new Error(`${file}: not a tar archive (bad header at byte ${pos})`);
      const body = pos + BLOCK;
      const len = h.size ?? 0;
      pos = body + len + padding(len);
      if (h.type === 'ExtendedHeader' || h.type === 'GlobalExtendedHeader' || h.type === 'NextFileHasLongPath') {
        if (len > MAX_EXTENDED) throw new Error(`${file}: an extended header of ${len} bytes`);
        const text = Buffer.alloc(len);
        readExactly(fd, text, len, body, file);
        if (h.type === 'GlobalExtendedHeader') gex = Pax.parse(text.toString('utf8'), gex, true);
        else if (h.type === 'ExtendedHeader') ex = Pax.parse(text.toString('utf8'), ex);
        else ex = new Pax({ ...ex, path: text.toString('utf8').replace(/\0+$/, '') });
        continue;
      }
      ex = undefined;
      if ((h.type !== 'File' && h.type !== 'OldFile' && h.type !== 'ContiguousFile') || path.posix.normalize(h.path ?? '') !== rel) continue;
      copyOut(fd, body, len, dest, file);
      return true;
    }
    return false;
  } finally {
    fs.closeSync(fd);
  }
}

function copyOut(fd: number, from: number, len: number, dest: string, file: string): void {
  const out = fs.openSync(dest, 'wx', 0o600);
  try {
    const buf = Buffer.alloc(Math.min(CHUNK, len));
    for (let off = 0; off < len; ) {
      const n = Math.min(buf.length, len - off);
      readExactly(fd, buf, n, from + off, file);
      writeAllAt(out, buf.subarray(0, n), off);
      off += n;
    }
  } finally {
    fs.closeSync(out);
  }
}
