// Hostile base images (security-cases.md rows 1–3 in base layers): FROM an image whose
// layers are a decompression bomb or climb out of the root must fail with a clear
// error, keep memory flat and leave nothing behind outside the build's cache.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { startUkcRegistry, type RunningRegistry } from '../../bench/lib/servers.js';
import { RegistryClient } from '../../src/client/registry-client.js';
import { pushImage } from '../../src/client/image.js';
import { digestOf } from '../../src/oci/digest.js';
import { buildProject } from '../../src/builder/exec/project.js';

const ROOT = new URL('../../..', import.meta.url).pathname;
let registry: RunningRegistry;
let work = '';

/** A tiny explicit ustar writer, so a test can put any name in a header. */
function tarEntry(name: string, body: Buffer | string, type: '0' | '2' = '0', linkname = ''): Buffer {
  const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([h, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

async function pushLayerImage(repo: string, layers: Buffer[]): Promise<void> {
  const client = new RegistryClient({ host: registry.host });
  const layerDescs = layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(l).text, size: l.length }));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: layerDescs.map((d) => d.digest) } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config).text, size: config.length },
      layers: layerDescs,
    }),
  );
  const blobs = new Map<string, Buffer>([[digestOf(config).text, config], ...layers.map((l) => [digestOf(l).text, l] as [string, Buffer])]);
  const { Readable } = await import('node:stream');
  await pushImage({
    client,
    repository: repo,
    tag: 'latest',
    manifest: { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
    blobs: (d) => ({ size: d.size, open: () => Readable.from([blobs.get(d.digest) as Buffer]) }),
  });
}

before(async () => {
  registry = await startUkcRegistry(ROOT);
  work = await mkdtemp(join(tmpdir(), 'ukc-e2e-buildsec-'));
  // 64 MiB of zeros in one entry: ~64 KiB of gzip.
  const bomb = gzipSync(Buffer.concat([tarEntry('zeros', Buffer.alloc(64 * 1024 * 1024)), Buffer.alloc(1024)]));
  await pushLayerImage('evil/bomb', [bomb]);
  const climb = gzipSync(Buffer.concat([tarEntry('../../../../unbroken', 'pwned'), Buffer.alloc(1024)]));
  await pushLayerImage('evil/climb', [climb]);
  // Layer 1 plants a link to /, layer 2 writes through it (GNU tar CVE-2025-45582 across two archives).
  const plant = gzipSync(Buffer.concat([tarEntry('etc', '', '2', '/'), Buffer.alloc(1024)]));
  const through = gzipSync(Buffer.concat([tarEntry('etc/unbroken', 'pwned'), Buffer.alloc(1024)]));
  await pushLayerImage('evil/twolayers', [plant, through]);
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function project(name: string, from: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'Dockerfile'), `FROM ${registry.host}/${from}\n`);
  return dir;
}

test('row 3: a gzip bomb in a base layer stops at the byte limit with a clear error', async () => {
  const dir = await project('bomb', 'evil/bomb:latest');
  const before = process.memoryUsage().rss;
  await assert.rejects(
    () => buildProject({ dir, cwd: work, output: join(work, 'out-bomb'), cacheDir: join(work, 'cache'), layerLimits: { maxBytes: 8 * 1024 * 1024 } }),
    (e: unknown) => e instanceof Error && /limit|maxBytes|8388608/.test(e.message),
  );
  assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'memory stays flat');
});

test('row 1: a base layer entry climbing with ../ is refused and nothing lands outside', async () => {
  const dir = await project('climb', 'evil/climb:latest');
  await writeFile(join(work, 'unbroken'), 'original');
  await assert.rejects(
    () => buildProject({ dir, cwd: work, output: join(work, 'out-climb'), cacheDir: join(work, 'cache') }),
    (e: unknown) => e instanceof Error && /\.\./.test(e.message),
  );
  assert.equal(await readFile(join(work, 'unbroken'), 'utf8'), 'original');
});

test('row 2: a later layer writing through an earlier layer\'s link to / stays inside the rootfs', async () => {
  const dir = await project('twolayers', 'evil/twolayers:latest');
  const res = await buildProject({ dir, cwd: work, output: join(work, 'out-two'), cacheDir: join(work, 'cache'), rootfsFormat: 'cpio' });
  assert.equal(res.image.layers.length, 1);
  // The host's /etc is untouched: the write went to <rootfs>/unbroken (the link resolved inside the root).
  await assert.rejects(() => readFile('/etc/unbroken', 'utf8'));
  const listing = execFileSync('cpio', ['-t', '--quiet'], { input: await readFile(res.image.initrd.path), encoding: 'utf8' }).split('\n');
  assert.ok(listing.includes('./unbroken'), listing.join(' '));
});
