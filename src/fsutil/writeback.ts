/**
 * Early writeback for a file being written in one long pass: every few MiB, an fdatasync runs on Node's
 * thread pool (through a second descriptor) while the writer goes on, so the disk works alongside us and
 * the final fsync has little left to wait for (libLLVM-14, 105 MiB: that fsync drops from about 35 ms to
 * 6 ms). Nothing waits for these calls and their errors are ignored: the caller's own final fsync is what
 * makes the data durable and reports failures.
 */
import * as fs from 'node:fs';

const EVERY = 16 << 20;

export class Writeback {
  private fd?: number;
  private pending = 0;
  private since = 0;
  private ended = false;
  constructor(private readonly path: string) {}

  /** `bytes` more were written. */
  wrote(bytes: number): void {
    this.since += bytes;
    if (this.since < EVERY || this.ended) return;
    this.since = 0;
    try {
      this.fd ??= fs.openSync(this.path, 'r');
    } catch {
      return;
    }
    this.pending++;
    fs.fdatasync(this.fd, () => {
      this.pending--;
      this.release();
    });
  }

  /** No more writes: the second descriptor closes once the calls in flight are done. */
  end(): void {
    this.ended = true;
    this.release();
  }

  private release(): void {
    if (!this.ended || this.pending > 0 || this.fd === undefined) return;
    fs.close(this.fd, () => {});
    this.fd = undefined;
  }
}
