// How the node reads image references (src/oci/reference.ts rules) and which
// registry hosts it will contact (security-cases.md row 10).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { NodeError, Errno } from '../errors.js';
import { LOCAL_PRINCIPAL } from '../auth.js';
import { LocalImages, locateImage, type ImageHostRules } from './local.js';
import type { BlobStore, MetadataStore } from '../../store/types.js';
import { MemoryBlobStore } from '../../store/memory.js';
import type { Descriptor } from '../../client/index.js';
import type { RegistryService } from '../../registry/service.js';

const RULES: ImageHostRules = { centralUrl: 'http://127.0.0.1:5000', registryHost: '127.0.0.1:7000' };

test('official short names live under official/ on the central registry', () => {
  const loc = locateImage('base-compat:latest', RULES);
  assert.deepEqual(loc.origin, { kind: 'central', baseUrl: 'http://127.0.0.1:5000' });
  assert.equal(loc.repository, 'official/base-compat');
  assert.equal(loc.remotePath, 'official/base-compat');
  assert.equal(loc.tag, 'latest');
  assert.equal(locateImage('base-compat', RULES).tag, 'latest', 'the default tag applies');
  assert.equal(locateImage('alice/app', RULES).repository, 'alice/app');
  const d = `sha256:${'a'.repeat(64)}`;
  const pinned = locateImage(`alice/app@${d}`, RULES);
  assert.equal(pinned.digest?.text, d);
  assert.equal(pinned.tag, undefined);
});

test('a reference naming the central host explicitly is the same image', () => {
  assert.deepEqual(locateImage('127.0.0.1:5000/base-compat:latest', RULES), locateImage('base-compat:latest', RULES));
  assert.equal(locateImage('127.0.0.1:5000/alice/app:v1', RULES).repository, 'alice/app');
});

test("the node's own registry host (and its loopback aliases) is local only", () => {
  for (const host of ['127.0.0.1:7000', 'localhost:7000']) {
    const loc = locateImage(`${host}/alice/app:v1`, RULES);
    assert.deepEqual(loc.origin, { kind: 'local' });
    assert.equal(loc.repository, 'alice/app');
  }
  // Without a central registry, short names resolve against the node's own registry.
  const alone = locateImage('base-compat:latest', { registryHost: '127.0.0.1:7000' });
  assert.deepEqual(alone.origin, { kind: 'local' });
  assert.equal(alone.repository, 'official/base-compat');
});

test('any other registry host is refused (EACCES) unless configured as allowed', () => {
  for (const url of ['evil.example.com/alice/app:latest', '169.254.169.254/latest/meta-data', '127.0.0.1:5001/alice/app', 'localhost:5000/alice/app']) {
    assert.throws(
      () => locateImage(url, RULES),
      (e: unknown) => e instanceof NodeError && e.errno === Errno.EACCES && /not allowed on this node/.test(e.message),
      url,
    );
  }
  const allowed = locateImage('Registry.Example.com:5001/alice/app:v2', { ...RULES, allowedRegistries: ['https://registry.example.com:5001'] });
  assert.deepEqual(allowed.origin, { kind: 'allowed', baseUrl: 'https://registry.example.com:5001' });
  assert.equal(allowed.repository, 'ext-registry-example-com-5001/alice/app', 'cached under a namespace of its own');
  assert.equal(allowed.remotePath, 'alice/app');
  assert.equal(allowed.tag, 'v2');
});

test('malformed references are EINVAL', () => {
  for (const url of ['', 'Alice/App', 'a:b:c', `alice/app@sha256:${'x'.repeat(64)}`, 'a'.repeat(2000)]) {
    assert.throws(() => locateImage(url, RULES), (e: unknown) => e instanceof NodeError && e.errno === Errno.EINVAL, url);
  }
});

test('a refused host is never contacted, credentials included', async (t) => {
  // A listener standing for the foreign registry: it must see no connection at all.
  const seen: Socket[] = [];
  const foreign = createServer((s) => {
    seen.push(s);
    s.destroy();
  });
  await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => foreign.close(() => r())));
  const port = (foreign.address() as { port: number }).port;
  const dir = await mkdtemp(join(tmpdir(), 'ukc-local-images-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  // Stores that fail loudly if touched: a refused reference must not reach them either.
  const untouchable = new Proxy({}, { get: () => () => assert.fail('a store was used for a refused reference') });
  const images = new LocalImages({
    blobs: untouchable as BlobStore,
    metadata: untouchable as MetadataStore,
    service: untouchable as RegistryService,
    centralUrl: 'http://127.0.0.1:5000',
    cacheDir: dir,
    registryHost: '127.0.0.1:7000',
  });
  t.after(() => images.close());
  await assert.rejects(
    images.resolve({ url: `127.0.0.1:${port}/alice/app:latest`, pullPolicy: 'always', credentials: { username: 'u', password: 'secret' } }, LOCAL_PRINCIPAL),
    (e: unknown) => e instanceof NodeError && e.errno === Errno.EACCES,
  );
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(seen.length, 0, 'no connection to the refused host');
});

// ---- rootfs cache ---------------------------------------------------------------

/** A Unikraft-layout initrd layer (a tar holding unikraft/bin/initrd, a CPIO of `files`) stored in `blobs`. */
async function cpioLayer(base: string, blobs: MemoryBlobStore, files: Record<string, string>): Promise<Descriptor> {
  const src = join(base, `src-${randomUUID()}`);
  for (const [name, data] of Object.entries(files)) {
    await mkdir(dirname(join(src, name)), { recursive: true });
    await writeFile(join(src, name), data);
  }
  const layer = join(base, `layer-${randomUUID()}`);
  await mkdir(join(layer, 'unikraft', 'bin'), { recursive: true });
  const list = Object.keys(files).join('\n') + '\n';
  execFileSync('cpio', ['-o', '-H', 'newc', '--quiet', '-O', join(layer, 'unikraft', 'bin', 'initrd')], { cwd: src, input: list });
  const tarBytes = execFileSync('tar', ['-cf', '-', '-C', layer, 'unikraft/bin/initrd']);
  const stored = await blobs.putBytes(tarBytes);
  return { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: stored.digest.text, size: tarBytes.length };
}

function cacheImages(cacheDir: string, blobs: BlobStore): LocalImages {
  const untouchable = new Proxy({}, { get: () => () => assert.fail('not used for a rootfs build') });
  return new LocalImages({ blobs, metadata: untouchable as MetadataStore, service: untouchable as RegistryService, cacheDir, registryHost: '127.0.0.1:7000' });
}

test('the rootfs cache is 0700 and a CPIO tree is renamed in whole, then marked ready', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-rootfs-cache-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const cacheDir = join(base, 'cache');
  await mkdir(cacheDir, { mode: 0o755 });
  await chmod(cacheDir, 0o755);
  const blobs = new MemoryBlobStore();
  const layer = await cpioLayer(base, blobs, { 'etc/hello': 'world' });
  const images = cacheImages(cacheDir, blobs);
  t.after(() => images.close());
  const rootfs = await images.prepareRootfs(layer);
  assert.equal((await stat(cacheDir)).mode & 0o777, 0o700, 'an existing cache dir is made private');
  assert.equal(rootfs.kind, 'cpio');
  assert.equal(await readFile(join(rootfs.path, 'etc', 'hello'), 'utf8'), 'world');
  const hex = layer.digest.slice('sha256:'.length);
  assert.equal(await readFile(join(cacheDir, `${hex}.ready`), 'utf8'), 'cpio\n');
  assert.deepEqual((await readdir(cacheDir)).sort(), [hex, `${hex}.ready`].sort(), 'no temp file or directory is left');
});

test('a partial rootfs tree without a valid marker (a crash mid-build) is discarded and rebuilt', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-rootfs-cache-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const cacheDir = join(base, 'cache');
  const blobs = new MemoryBlobStore();
  const layer = await cpioLayer(base, blobs, { 'etc/hello': 'world', 'bin/app': 'app' });
  const hex = layer.digest.slice('sha256:'.length);
  for (const marker of [undefined, 'cp', 'cpio\ngarbage', '']) {
    await rm(cacheDir, { recursive: true, force: true });
    // What a crash can leave: a half tree at the final name, a torn (or no) marker, temp leftovers.
    await mkdir(join(cacheDir, hex, 'etc'), { recursive: true });
    await writeFile(join(cacheDir, hex, 'etc', 'half'), 'partial');
    if (marker !== undefined) await writeFile(join(cacheDir, `${hex}.ready`), marker);
    await mkdir(join(cacheDir, `.tmp-${randomUUID()}.d`, 'x'), { recursive: true });
    await writeFile(join(cacheDir, `.tmp-${randomUUID()}`), 'initrd bytes');
    const images = cacheImages(cacheDir, blobs);
    try {
      const rootfs = await images.prepareRootfs(layer);
      assert.equal(rootfs.path, join(cacheDir, hex));
      assert.deepEqual((await readdir(join(rootfs.path, 'etc'))).sort(), ['hello'], `marker ${JSON.stringify(marker)}: the half tree is gone`);
      assert.equal(await readFile(join(rootfs.path, 'bin', 'app'), 'utf8'), 'app');
      assert.equal(await readFile(join(cacheDir, `${hex}.ready`), 'utf8'), 'cpio\n');
      assert.deepEqual((await readdir(cacheDir)).sort(), [hex, `${hex}.ready`].sort(), 'crash leftovers are removed');
    } finally {
      images.close();
    }
  }
  // A valid marker is trusted: the tree is used as it is, not rebuilt.
  await writeFile(join(cacheDir, hex, 'etc', 'kept'), 'kept');
  const again = cacheImages(cacheDir, blobs);
  t.after(() => again.close());
  await again.prepareRootfs(layer);
  assert.equal(await readFile(join(cacheDir, hex, 'etc', 'kept'), 'utf8'), 'kept');
});
