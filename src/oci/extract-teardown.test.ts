// An extraction stopped early (a limit, a hostile path, a truncated stream) must
// settle at once, release its source (destroy the stream, close a descriptor it
// owns) and never wait for the source's next chunk: a stalled peer must not hold
// it open. Every case is bounded by a timer, so a regression fails, not hangs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { ExtractLimitError, ExtractPathError, decompressStream, extractTar, type Compression } from './extract.js';

const SETTLE_MS = 5000;

async function temp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-extract-teardown-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Rejects with a clear message when `p` has not settled within `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

function ustarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return h;
}

function compress(tar: Buffer, kind: Compression): Buffer {
  if (kind === 'gzip') return gzipSync(tar);
  if (kind === 'zstd') return execFileSync('zstd', ['-q', '-c'], { input: tar, maxBuffer: 64 * 1024 * 1024 });
  return tar;
}

/** A stream that hands out `data` in small chunks and then stalls: it never ends (a silent peer). */
function stalledSource(data: Buffer): { stream: Readable; destroyed: () => boolean } {
  let destroyed = false;
  const stream = new Readable({
    read() {},
    destroy(err, cb) {
      destroyed = true;
      cb(err);
    },
  });
  for (let i = 0; i < data.length; i += 1024) stream.push(data.subarray(i, i + 1024));
  return { stream, destroyed: () => destroyed };
}

const KINDS: Compression[] = ['gzip', 'zstd', 'none'];

test('a byte limit stops extraction from a stalled source at once and destroys it', async (t) => {
  for (const kind of KINDS) {
    await t.test(kind, async (t2) => {
      const dir = await temp(t2);
      // A header declaring 64 MiB, then 4 MiB of its body, then silence.
      const body = compress(Buffer.concat([ustarHeader('zeros', 64 * 1024 * 1024), Buffer.alloc(4 * 1024 * 1024)]), kind);
      const src = stalledSource(body);
      await assert.rejects(
        within(extractTar(join(dir, 'root'), src.stream, { maxBytes: 1024 * 1024 }), SETTLE_MS, `${kind} extraction`),
        (e: unknown) => e instanceof ExtractLimitError && e.limit === 'maxBytes',
      );
      assert.ok(src.destroyed(), 'the source stream is destroyed');
    });
  }
});

test('a hostile first entry stops extraction from a stalled source at once', async (t) => {
  for (const kind of KINDS) {
    await t.test(kind, async (t2) => {
      const dir = await temp(t2);
      const body = compress(Buffer.concat([ustarHeader('../escape', 4), Buffer.from('evil'), Buffer.alloc(508)]), kind);
      const src = stalledSource(body);
      await assert.rejects(
        within(extractTar(join(dir, 'root'), src.stream), SETTLE_MS, `${kind} extraction`),
        (e: unknown) => e instanceof ExtractPathError,
      );
      assert.ok(src.destroyed(), 'the source stream is destroyed');
    });
  }
});

test('a stream over a FileHandle is closed when a limit stops extraction', async (t) => {
  for (const kind of KINDS) {
    await t.test(kind, async (t2) => {
      const dir = await temp(t2);
      const path = join(dir, `layer.${kind}`);
      await writeFile(path, compress(Buffer.concat([ustarHeader('zeros', 16 * 1024 * 1024), Buffer.alloc(16 * 1024 * 1024), Buffer.alloc(1024)]), kind));
      const fh = await open(path, 'r');
      t2.after(() => (fh.fd === -1 ? undefined : fh.close()));
      const stream = fh.createReadStream();
      const closed = new Promise<void>((resolve) => stream.once('close', resolve));
      await assert.rejects(
        within(extractTar(join(dir, 'root'), stream, { maxBytes: 2 * 1024 * 1024 }), SETTLE_MS, `${kind} extraction`),
        ExtractLimitError,
      );
      await within(closed, SETTLE_MS, 'stream close');
      assert.equal(fh.fd, -1, 'the file handle is closed');
    });
  }
});

test('a truncated gzip stream fails with an error instead of hanging', async (t) => {
  const dir = await temp(t);
  const whole = gzipSync(Buffer.concat([ustarHeader('f', 100_000), Buffer.alloc(100_352), Buffer.alloc(1024)]));
  const truncated = whole.subarray(0, Math.floor(whole.length / 2));
  await assert.rejects(within(extractTar(join(dir, 'root'), Readable.from([truncated])), SETTLE_MS, 'extraction'), (e: unknown) => e instanceof Error);
});

test('a consumer leaving decompressStream early releases a stalled source', async () => {
  for (const kind of KINDS) {
    const src = stalledSource(compress(Buffer.alloc(8 * 1024 * 1024), kind));
    const run = async (): Promise<number> => {
      let seen = 0;
      for await (const chunk of decompressStream(src.stream)) {
        seen += chunk.length;
        if (seen > 64 * 1024) break;
      }
      return seen;
    };
    assert.ok((await within(run(), SETTLE_MS, `${kind} early break`)) > 64 * 1024);
    assert.ok(src.destroyed(), `${kind}: the source stream is destroyed`);
  }
});
