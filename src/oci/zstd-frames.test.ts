// The zstd frame walker: real zstd output (checksums, several frames, skippable
// frames) passes; a frame asking for a window above the limit is refused.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DEFAULT_ZSTD_MAX_WINDOW_BYTES, ZstdFrameGuard, ZstdWindowError } from './zstd-frames.js';
import { decompressStream } from './extract.js';

const ZSTD = '/usr/bin/zstd';

function feed(bytes: Buffer, max?: number, slice = 777): void {
  const guard = new ZstdFrameGuard(max);
  for (let i = 0; i < bytes.length; i += slice) guard.check(bytes.subarray(i, i + slice));
}

test('real zstd streams pass the walker and decode (checksums, several frames, skippable frames)', async (t) => {
  if (!existsSync(ZSTD)) return t.skip('zstd CLI not installed');
  const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(500_000, 7), randomBytes(1000)]);
  const one = execFileSync(ZSTD, ['-q', '-c', '--check', '-19'], { input: data });
  const two = execFileSync(ZSTD, ['-q', '-c', '--no-check', '-1'], { input: data });
  const skippable = Buffer.concat([Buffer.from([0x50, 0x2a, 0x4d, 0x18]), Buffer.from([5, 0, 0, 0]), Buffer.alloc(5, 9)]);
  const all = Buffer.concat([one, skippable, two]);
  for (const slice of [1, 3, 777, 1 << 20]) feed(all, undefined, slice);
  const out: Buffer[] = [];
  for await (const c of decompressStream(Readable.from([all]), 'zstd')) out.push(c);
  assert.ok(Buffer.concat(out).equals(Buffer.concat([data, data])));
});

test('a frame whose window exceeds the limit is refused before it is decoded', async (t) => {
  if (!existsSync(ZSTD)) return t.skip('zstd CLI not installed');
  // --long=28 writes a 256 MiB window descriptor: zstd's own decoder refuses it without --long too.
  const wide = execFileSync(ZSTD, ['-q', '-c', '--long=28'], { input: randomBytes(1000) });
  assert.throws(() => feed(wide), (e: unknown) => e instanceof ZstdWindowError && e.window === 256 * 1024 * 1024 && e.max === DEFAULT_ZSTD_MAX_WINDOW_BYTES);
  feed(wide, 256 * 1024 * 1024);
  await assert.rejects(async () => {
    for await (const _ of decompressStream(Readable.from([wide]), 'zstd')) void _;
  }, /window/);
});
