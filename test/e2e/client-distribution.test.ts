// Interop: ukc's registry client against the CNCF distribution registry
// (Debian docker-registry, started here with a temporary config) and against
// ukc's own registry (`ukcd registry`), checked from the other side with skopeo.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startDockerRegistry, startUkcRegistry, type RunningRegistry } from '../../bench/lib/servers.js';
import { pullImage, pushImage, RegistryClient, type BlobSource } from '../../src/client/index.js';
import { MediaType } from '../../src/oci/mediatypes.js';

const run = promisify(execFile);
const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const source = (b: Buffer): BlobSource => ({ size: b.length, open: () => Readable.from([b]) });

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const servers: [string, () => Promise<RunningRegistry>][] = [
  ['CNCF distribution registry', () => startDockerRegistry()],
  ['ukc registry (ukcd registry)', () => startUkcRegistry(ROOT)],
];

for (const [serverName, start] of servers) describe(`client ↔ ${serverName}`, () => {
  let registry: RunningRegistry;
  let client: RegistryClient;
  let work: string;
  before(async () => {
    registry = await start();
    client = new RegistryClient({ host: registry.host, chunkSize: 1 << 20, monolithicMaxBytes: 2 << 20 });
    work = await mkdtemp(join(tmpdir(), 'ukc-client-e2e-'));
  });
  after(async () => {
    client?.close();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const config = Buffer.from(JSON.stringify({ architecture: 'x86_64', os: 'kraftcloud', config: { Cmd: ['/app'] }, rootfs: { type: 'layers', diff_ids: [] } }));
  const layer1 = randomBytes(200_000);
  const layer2 = randomBytes(50_000);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: sha(config), size: config.length },
      layers: [
        { mediaType: MediaType.OciLayerTar, digest: sha(layer1), size: layer1.length },
        { mediaType: MediaType.OciLayerTar, digest: sha(layer2), size: layer2.length },
      ],
    }),
  );
  const blobs = new Map([[sha(config), config], [sha(layer1), layer1], [sha(layer2), layer2]]);

  it('pushes an image (config + 2 layers) and pulls it back with equal digests', async () => {
    await client.ping();
    const pushed = await pushImage({
      client,
      repository: 'e2e/img',
      tag: 'v1',
      manifest: { bytes: manifest, mediaType: MediaType.OciManifest },
      blobs: (d) => source(blobs.get(d.digest) as Buffer),
    });
    assert.equal(pushed.digest.text, sha(manifest));
    assert.deepEqual(pushed.blobs.map((b) => b.action), ['uploaded', 'uploaded', 'uploaded']);
    const dir = join(work, 'layout');
    const pulled = await pullImage({ client, repository: 'e2e/img', reference: 'v1', dir });
    assert.equal(pulled.digest.text, sha(manifest));
    for (const [d, bytes] of blobs) {
      const onDisk = await readFile(join(dir, 'blobs', 'sha256', d.slice('sha256:'.length)));
      assert.equal(sha(onDisk), d);
      assert.deepEqual(onDisk, bytes);
    }
    // skopeo reads the layout we wrote, too.
    const { stdout } = await run('skopeo', ['inspect', '--raw', `oci:${dir}:v1`]);
    assert.equal(sha(Buffer.from(stdout)), sha(manifest));
    assert.deepEqual(await client.listTags('e2e/img'), ['v1']);
  });

  it('skopeo reads what the client pushed', async () => {
    const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/e2e/img:v1`]);
    assert.equal(sha(Buffer.from(stdout)), sha(manifest));
    const head = await client.headManifest('e2e/img', 'v1');
    assert.equal(head?.digest?.text, sha(manifest));
  });

  it('pushes a several-MB blob in chunks and pulls it back', async () => {
    const big = randomBytes(6 * 1024 * 1024 + 123);
    const d = sha(big);
    const r = await client.pushBlob('e2e/big', d, source(big));
    assert.equal(r.action, 'uploaded');
    const back = await collect(client.getBlob('e2e/big', d, { size: big.length }));
    assert.equal(sha(back), d);
  });

  it('mounts a blob across repositories', async () => {
    const d = sha(layer1);
    assert.equal(await client.blobExists('e2e/other', d), false);
    const r = await client.pushBlob('e2e/other', d, source(layer1), { mountFrom: 'e2e/img' });
    assert.equal(r.action, 'mounted');
    assert.equal(await client.blobExists('e2e/other', d), true);
  });

  it('lists the catalog and the referrers of a manifest', async () => {
    const repos = await client.catalog({ pageSize: 1 });
    assert.ok(repos.includes('e2e/img') && repos.includes('e2e/big'), `catalog: ${repos.join(',')}`);
    const empty = Buffer.from('{}');
    await client.pushBlob('e2e/img', sha(empty), source(empty));
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        artifactType: 'application/vnd.ukc.test',
        config: { mediaType: MediaType.OciEmpty, digest: sha(empty), size: 2 },
        layers: [{ mediaType: MediaType.OciEmpty, digest: sha(empty), size: 2 }],
        subject: { mediaType: MediaType.OciManifest, digest: sha(manifest), size: manifest.length },
      }),
    );
    const d = await client.putManifest('e2e/img', sha(artifact), artifact, MediaType.OciManifest);
    const referrers = await client.referrers('e2e/img', sha(manifest));
    if (serverName.startsWith('ukc')) {
      assert.deepEqual(referrers.map((r) => [r.digest, r.artifactType]), [[d.text, 'application/vnd.ukc.test']]);
    } else {
      // distribution 2.8 has no referrers API and nobody wrote the fallback tag: an empty list, not an error.
      assert.deepEqual(referrers, []);
    }
  });

  it('deletes a manifest and then reports MANIFEST_UNKNOWN', async () => {
    const extra = Buffer.from(manifest.toString().replace('"schemaVersion":2', '"schemaVersion":2,"annotations":{"x":"y"}'));
    const d = await client.putManifest('e2e/img', 'v2', extra, MediaType.OciManifest);
    await client.deleteManifest('e2e/img', d);
    await assert.rejects(client.getManifest('e2e/img', d), (e: unknown) => (e as { status?: number }).status === 404);
  });
});
