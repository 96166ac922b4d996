/**
 * Per-instance console logs: one bounded ring file per instance.
 *
 *   <dir>/<uuid>.log
 *     [0..8)    total bytes ever written (uint64 LE) — the "end" offset
 *     [8..8+C)  ring of capacity C; byte at absolute offset o lives at 8 + (o mod C)
 *
 * Offsets are absolute since the instance was created, so a client can follow
 * a log with `offset = previous range.end`. Only the last C bytes are
 * available: [max(0, end - C), end). The header is written after the data, so
 * a crash can lose the last chunk but never exposes bytes that were not written.
 */
import { closeSync, existsSync, mkdirSync, openSync, readSync, rmSync, writeSync, fstatSync } from 'node:fs';
import { join } from 'node:path';

const HEADER_BYTES = 8;

export interface LogRange {
  start: number;
  end: number;
}

export interface LogRead {
  output: Buffer;
  available: LogRange;
  range: LogRange;
}

export class LogRing {
  constructor(
    private readonly dir: string,
    /** Bytes kept per instance. */
    private readonly capacity: number,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  private path(uuid: string): string {
    // uuids come from crypto.randomUUID(); checked here again because they name a file.
    if (!/^[0-9a-f-]{36}$/.test(uuid)) throw new Error('log: invalid instance id');
    return join(this.dir, `${uuid}.log`);
  }

  private readEnd(fd: number): number {
    if (fstatSync(fd).size < HEADER_BYTES) return 0;
    const header = Buffer.alloc(HEADER_BYTES);
    readSync(fd, header, 0, HEADER_BYTES, 0);
    return Number(header.readBigUInt64LE(0));
  }

  append(uuid: string, chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    const fd = openSync(this.path(uuid), existsSync(this.path(uuid)) ? 'r+' : 'w+');
    try {
      const end = this.readEnd(fd);
      // Only the tail of an oversized chunk can survive in the ring.
      const keep = chunk.length > this.capacity ? chunk.subarray(chunk.length - this.capacity) : chunk;
      const skipped = chunk.length - keep.length;
      let pos = (end + skipped) % this.capacity;
      let off = 0;
      while (off < keep.length) {
        const n = Math.min(keep.length - off, this.capacity - pos);
        writeSync(fd, keep, off, n, HEADER_BYTES + pos);
        off += n;
        pos = (pos + n) % this.capacity;
      }
      const header = Buffer.alloc(HEADER_BYTES);
      header.writeBigUInt64LE(BigInt(end + chunk.length), 0);
      writeSync(fd, header, 0, HEADER_BYTES, 0);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Reads up to `limit` bytes from absolute `offset`; a negative offset counts
   * back from the end. The answer is clamped to what is still available.
   */
  read(uuid: string, offset: number, limit: number): LogRead {
    const p = this.path(uuid);
    if (!existsSync(p)) return { output: Buffer.alloc(0), available: { start: 0, end: 0 }, range: { start: 0, end: 0 } };
    const fd = openSync(p, 'r');
    try {
      const end = this.readEnd(fd);
      const availableStart = Math.max(0, end - this.capacity);
      const wanted = offset < 0 ? end + offset : offset;
      const start = Math.min(Math.max(wanted, availableStart), end);
      const stop = Math.min(start + Math.max(0, limit), end);
      const out = Buffer.alloc(stop - start);
      let done = 0;
      while (done < out.length) {
        const pos = (start + done) % this.capacity;
        const n = Math.min(out.length - done, this.capacity - pos);
        readSync(fd, out, done, n, HEADER_BYTES + pos);
        done += n;
      }
      return { output: out, available: { start: availableStart, end }, range: { start, end: stop } };
    } finally {
      closeSync(fd);
    }
  }

  remove(uuid: string): void {
    rmSync(this.path(uuid), { force: true });
  }
}
