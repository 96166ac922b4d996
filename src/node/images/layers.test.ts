// Compressed Unikraft layers on the node: gzip and zstd initrd layers prepare
// the same rootfs as the uncompressed one; what the node cannot run is refused
// with an error naming the layer, and leaves nothing in the rootfs cache.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Errno, NodeError } from '../errors.js';
import { LocalImages, type LocalImagesLimits } from './local.js';
import { readUnikraftLayer, shortDigest, unikraftLayers } from './layers.js';
import { MemoryBlobStore } from '../../store/memory.js';
import type { MetadataStore } from '../../store/types.js';
import type { RegistryService } from '../../registry/service.js';
import type { Descriptor } from '../../client/index.js';
import { encodeTarHeader } from '../../oci/tar.js';
import { MediaType } from '../../oci/mediatypes.js';

// ---- zstd frames written by hand (raw and RLE blocks are valid zstd; fzstd decodes them) ----

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const ZSTD_BLOCK = 128 * 1024;

function blockHeader(size: number, type: 0 | 1 | 2 | 3, last: boolean): Buffer {
  const v = (size << 3) | (type << 1) | (last ? 1 : 0);
  return Buffer.from([v & 0xff, (v >> 8) & 0xff, (v >> 16) & 0xff]);
}

/** One zstd frame of raw blocks holding `data` (window 128 KiB). */
function zstdRaw(data: Buffer): Buffer {
  const parts: Buffer[] = [ZSTD_MAGIC, Buffer.from([0x00, 7 << 3])];
  if (data.length === 0) parts.push(blockHeader(0, 0, true));
  for (let i = 0; i < data.length; i += ZSTD_BLOCK) {
    const piece = data.subarray(i, i + ZSTD_BLOCK);
    parts.push(blockHeader(piece.length, 0, i + ZSTD_BLOCK >= data.length), piece);
  }
  return Buffer.concat(parts);
}

/** `prefix` as raw blocks, then `rleBlocks` RLE blocks of 128 KiB zeros: a few bytes per 128 KiB out. */
function zstdBomb(prefix: Buffer, rleBlocks: number): Buffer {
  const parts: Buffer[] = [ZSTD_MAGIC, Buffer.from([0x00, 7 << 3]), blockHeader(prefix.length, 0, false), prefix];
  for (let i = 0; i < rleBlocks; i++) parts.push(blockHeader(ZSTD_BLOCK, 1, i === rleBlocks - 1), Buffer.from([0]));
  return Buffer.concat(parts);
}

// ---- layers ---------------------------------------------------------------------

async function cpioInitrd(base: string, files: Record<string, string>): Promise<Buffer> {
  const src = join(base, `src-${randomUUID()}`);
  for (const [name, data] of Object.entries(files)) {
    await mkdir(dirname(join(src, name)), { recursive: true });
    await writeFile(join(src, name), data);
  }
  return execFileSync('cpio', ['-o', '-H', 'newc', '--quiet'], { cwd: src, input: Object.keys(files).join('\n') + '\n', maxBuffer: 64 * 1024 * 1024 });
}

/** A tar of `entries` (files), with the end-of-archive blocks. */
function tarOf(entries: Record<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, data] of Object.entries(entries)) {
    parts.push(encodeTarHeader({ type: 'file', name, size: data.length, source: data }), data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

async function store(blobs: MemoryBlobStore, bytes: Buffer, mediaType: string, annotations?: Record<string, string>): Promise<Descriptor> {
  const stored = await blobs.putBytes(bytes);
  return { mediaType, digest: stored.digest.text, size: bytes.length, ...(annotations ? { annotations } : {}) };
}

function images(cacheDir: string, blobs: MemoryBlobStore, limits: Partial<LocalImagesLimits> = {}): LocalImages {
  const untouchable = new Proxy({}, { get: () => () => assert.fail('not used for a rootfs build') });
  return new LocalImages({ blobs, metadata: untouchable as MetadataStore, service: untouchable as RegistryService, cacheDir, registryHost: '127.0.0.1:7000', limits });
}

async function tempBase(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'ukc-layers-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  return base;
}

/** Asserts `p` rejects with a NodeError of `errno` whose message names `layer` and matches `reason`. */
async function refused(p: Promise<unknown>, layer: Descriptor, errno: number, reason: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof NodeError, `a NodeError, not ${String(e)}`);
    assert.equal(e.errno, errno, e.message);
    assert.ok(e.message.includes(`layer ${shortDigest(layer.digest)}`), e.message);
    assert.match(e.message, reason);
    return true;
  });
}

test('gzip and zstd initrd layers (OCI and Docker media types) prepare the same tree as the uncompressed one', async (t) => {
  const base = await tempBase(t);
  const blobs = new MemoryBlobStore();
  const initrd = await cpioInitrd(base, { 'etc/hello': 'world', 'www/index.html': '<h1>hi</h1>\n' });
  const tar = tarOf({ 'unikraft/bin/initrd': initrd });
  const variants: Array<[string, Buffer]> = [
    [MediaType.OciLayerTar, tar],
    [MediaType.OciLayerGzip, gzipSync(tar)],
    [MediaType.DockerLayerGzip, gzipSync(tar)],
    [MediaType.OciLayerZstd, zstdRaw(tar)],
  ];
  for (const [mediaType, bytes] of variants) {
    const cacheDir = join(base, `cache-${randomUUID()}`);
    const layer = await store(blobs, bytes, mediaType);
    const node = images(cacheDir, blobs);
    try {
      const rootfs = await node.prepareRootfs(layer);
      assert.equal(rootfs.kind, 'cpio', mediaType);
      assert.equal(await readFile(join(rootfs.path, 'www', 'index.html'), 'utf8'), '<h1>hi</h1>\n', mediaType);
      assert.equal(await readFile(join(rootfs.path, 'etc', 'hello'), 'utf8'), 'world', mediaType);
      const hex = layer.digest.slice('sha256:'.length);
      assert.deepEqual((await readdir(cacheDir)).sort(), [hex, `${hex}.ready`].sort(), `${mediaType}: decompressed once into the cache, no temp left`);
    } finally {
      node.close();
    }
  }
});

test('the initrd layer is the annotated one, and kernel layers read through (gzip, zstd) report a kernel', async (t) => {
  const base = await tempBase(t);
  const blobs = new MemoryBlobStore();
  const kernelTar = tarOf({ 'unikraft/bin/kernel': Buffer.from('not really a kernel') });
  const kernelGz = await store(blobs, gzipSync(kernelTar), MediaType.OciLayerGzip);
  const kernelZst = await store(blobs, zstdRaw(kernelTar), MediaType.OciLayerZstd);
  const initrd = await store(blobs, gzipSync(tarOf({ 'unikraft/bin/initrd': Buffer.from('070701') })), MediaType.OciLayerGzip, { 'org.unikraft.kernel.initrd': '/unikraft/bin/initrd' });
  assert.equal(unikraftLayers([kernelGz, initrd]).initrd, initrd);
  assert.equal(unikraftLayers([initrd, kernelGz]).initrd, initrd, 'the annotation wins over the position');
  for (const k of [kernelGz, kernelZst]) {
    const got = await readUnikraftLayer(blobs, k, { maxBytes: 1024 * 1024 });
    assert.deepEqual({ kernel: got.kernel, initrd: got.initrd }, { kernel: true, initrd: false });
  }
  void base;
});

test('a layer of an unknown media type is refused (ENOTSUP) before any byte is read', async (t) => {
  const base = await tempBase(t);
  const blobs = new MemoryBlobStore();
  const layer = await store(blobs, Buffer.from('BZh91AY&SY'), 'application/vnd.oci.image.layer.v1.tar+bzip2');
  assert.throws(() => unikraftLayers([layer]), (e: unknown) => e instanceof NodeError && e.errno === Errno.EOPNOTSUPP && e.message.includes(shortDigest(layer.digest)) && /media type/.test(e.message));
  const cacheDir = join(base, 'cache');
  const node = images(cacheDir, blobs);
  t.after(() => node.close());
  await refused(node.prepareRootfs(layer), layer, Errno.EOPNOTSUPP, /media type "application\/vnd\.oci\.image\.layer\.v1\.tar\+bzip2" is not supported/);
  assert.deepEqual(await readdir(cacheDir), [], 'no cache entry');
});

test('a layer that is not a Unikraft initrd (an ordinary container layer) is refused with its name and a reason', async (t) => {
  const base = await tempBase(t);
  const blobs = new MemoryBlobStore();
  const layer = await store(blobs, gzipSync(tarOf({ 'etc/passwd': Buffer.from('root:x:0:0::/root:/bin/sh\n') })), MediaType.OciLayerGzip);
  const cacheDir = join(base, 'cache');
  const node = images(cacheDir, blobs);
  t.after(() => node.close());
  await refused(node.prepareRootfs(layer), layer, Errno.EINVAL, /is not a Unikraft kernel or initrd layer \(it holds file "etc\/passwd"\)/);
  assert.deepEqual(await readdir(cacheDir), [], 'no cache entry, no temp file');
  // A tar holding only the kernel is no initrd layer either.
  const kernelOnly = await store(blobs, tarOf({ 'unikraft/bin/kernel': Buffer.from('k') }), MediaType.OciLayerTar);
  await refused(node.prepareRootfs(kernelOnly), kernelOnly, Errno.EINVAL, /is not a Unikraft initrd layer \(no unikraft\/bin\/initrd\)/);
  // Bytes that are no tar at all.
  const junk = await store(blobs, gzipSync(Buffer.alloc(2048, 0x41)), MediaType.OciLayerGzip);
  await refused(node.prepareRootfs(junk), junk, Errno.EINVAL, /is not a valid tar archive/);
  assert.deepEqual(await readdir(cacheDir), []);
});

test('a truncated gzip stream is refused as corrupt, and the half-written initrd is removed', async (t) => {
  const base = await tempBase(t);
  const blobs = new MemoryBlobStore();
  const initrd = await cpioInitrd(base, { 'big/file': 'x'.repeat(300_000) });
  const whole = gzipSync(tarOf({ 'unikraft/bin/initrd': initrd }), { level: 0 });
  // The truncated bytes are a valid blob of their own (their own digest): only the stream is bad.
  const layer = await store(blobs, whole.subarray(0, Math.floor(whole.length * 0.6)), MediaType.OciLayerGzip);
  const cacheDir = join(base, 'cache');
  const node = images(cacheDir, blobs);
  t.after(() => node.close());
  await refused(node.prepareRootfs(layer), layer, Errno.EINVAL, /the gzip stream is corrupt or truncated \(unexpected end of file\)/);
  assert.deepEqual(await readdir(cacheDir), [], 'no partial cache entry');
  // A corrupt (not truncated) zstd stream too: a reserved block type.
  const bad = await store(blobs, Buffer.concat([ZSTD_MAGIC, Buffer.from([0x00, 7 << 3]), blockHeader(16, 3, true), Buffer.alloc(16)]), MediaType.OciLayerZstd);
  await refused(node.prepareRootfs(bad), bad, Errno.EINVAL, /the zstd stream is corrupt or truncated/);
  assert.deepEqual(await readdir(cacheDir), []);
});

/**
 * Runs `fn` while sampling memory every few ms; answers the larger peak growth of RSS
 * and of ArrayBuffer allocations (a zero-filled buffer the size of a window counts in
 * the latter even before its pages are touched).
 */
async function peakMemoryGrowth(fn: () => Promise<void>): Promise<number> {
  const start = process.memoryUsage();
  let rss = start.rss;
  let buffers = start.arrayBuffers;
  const sample = (): void => {
    const m = process.memoryUsage();
    rss = Math.max(rss, m.rss);
    buffers = Math.max(buffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 2);
  try {
    await fn();
  } finally {
    clearInterval(timer);
    sample();
  }
  return Math.max(rss - start.rss, buffers - start.arrayBuffers);
}

test('a zstd bomb stops at the decompressed-bytes cap with bounded memory, and leaves no cache entry', async (t) => {
  const base = await tempBase(t);
  const blobs = new MemoryBlobStore();
  const cacheDir = join(base, 'cache');

  // Into the initrd: a tar header claiming a 6 GiB initrd, then 2 GiB of zeros from 64 KiB of RLE blocks.
  const header = encodeTarHeader({ type: 'file', name: 'unikraft/bin/initrd', size: 6 * 1024 ** 3, source: Buffer.alloc(0) });
  const bomb = await store(blobs, zstdBomb(header, 16 * 1024), MediaType.OciLayerZstd);
  assert.ok(bomb.size < 100 * 1024, `the bomb is small (${bomb.size} bytes)`);
  const small = images(cacheDir, blobs, { maxInitrdBytes: 16 * 1024 * 1024 });
  t.after(() => small.close());
  await refused(small.prepareRootfs(bomb), bomb, Errno.EFBIG, /decompresses to more than \d+ bytes/);
  assert.deepEqual(await readdir(cacheDir), [], 'no partial cache entry (the half-written initrd is removed)');

  // Memory: 1 GiB of decompressed bytes streams through (read, hashed, counted) before the cap.
  const zeros = await store(blobs, zstdBomb(Buffer.alloc(0), 16 * 1024), MediaType.OciLayerZstd);
  const cap = 1024 ** 3;
  const big = images(cacheDir, blobs, { maxInitrdBytes: cap });
  t.after(() => big.close());
  const growth = await peakMemoryGrowth(() => refused(big.prepareRootfs(zeros), zeros, Errno.EFBIG, /decompresses to more than \d+ bytes/));
  assert.ok(growth < 192 * 1024 * 1024, `memory stays bounded while ${cap} bytes stream through (grew ${growth} bytes)`);
  assert.deepEqual(await readdir(cacheDir), [], 'no partial cache entry');

  // A frame whose header asks for a 1.5 GiB window (fzstd would allocate it up front): refused before decoding.
  const window = Buffer.concat([ZSTD_MAGIC, Buffer.from([0xe0]), Buffer.from([0, 0, 0, 0x60, 0, 0, 0, 0]), blockHeader(0, 0, true)]);
  const wide = await store(blobs, window, MediaType.OciLayerZstd);
  const growth2 = await peakMemoryGrowth(() => refused(big.prepareRootfs(wide), wide, Errno.EOPNOTSUPP, /window, more than the \d+-byte limit/));
  assert.ok(growth2 < 64 * 1024 * 1024, `no 1.5 GiB window was allocated (grew ${growth2} bytes)`);
  assert.deepEqual(await readdir(cacheDir), []);
});

test('a layer whose stored bytes do not match its digest is refused, not cached', async (t) => {
  const base = await tempBase(t);
  const blobs = new MemoryBlobStore();
  const good = gzipSync(tarOf({ 'unikraft/bin/initrd': Buffer.from('070701') }));
  const stored = await store(blobs, good, MediaType.OciLayerGzip);
  // The descriptor claims another size: what the store holds is not what the manifest names.
  const layer = { ...stored, size: stored.size + 1 };
  const cacheDir = join(base, 'cache');
  const node = images(cacheDir, blobs);
  t.after(() => node.close());
  await refused(node.prepareRootfs(layer), layer, Errno.EIO, /do not match its digest/);
  assert.deepEqual(await readdir(cacheDir), []);
});
