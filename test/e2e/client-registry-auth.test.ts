// Our own registry client (src/client) against our auth-enabled registry (createRegistryAuth) over
// loopback sockets: it follows the Bearer challenge to /v2/token with `account:<API token>`, or sends
// the API token directly; it pushes to its own namespace and is refused (403 DENIED) on another's.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { pullImage, pushImage, RegistryClient, RegistryError, type BlobSource, type Credentials } from '../../src/client/index.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { createRegistryAuth, ROOT_TOKEN_FILE, startRegistryServer, type RegistryAuth, type RegistryServer } from '../../src/registry/index.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const source = (b: Buffer): BlobSource => ({ size: b.length, open: () => Readable.from([b]) });

const config = Buffer.from(JSON.stringify({ architecture: 'x86_64', os: 'kraftcloud', rootfs: { type: 'layers', diff_ids: [] } }));
const layer = randomBytes(300_000);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: sha(config), size: config.length },
    layers: [{ mediaType: MediaType.OciLayerTar, digest: sha(layer), size: layer.length }],
  }),
);
const blobs = new Map([
  [sha(config), config],
  [sha(layer), layer],
]);

let work: string;
let server: RegistryServer;
let auth: RegistryAuth;
const tok: Record<string, string> = {};
const clients: RegistryClient[] = [];

function clientWith(credentials: Credentials): RegistryClient {
  const c = new RegistryClient({ host: server.url.replace('http://', ''), credentials, chunkSize: 64 << 10, monolithicMaxBytes: 128 << 10 });
  clients.push(c);
  return c;
}

function push(client: RegistryClient, repository: string): Promise<unknown> {
  return pushImage({
    client,
    repository,
    tag: 'v1',
    manifest: { bytes: manifest, mediaType: MediaType.OciManifest },
    blobs: (d) => source(blobs.get(d.digest)!),
  });
}

async function refused(promise: Promise<unknown>, what: string): Promise<void> {
  await assert.rejects(promise, (e: unknown) => {
    assert.ok(e instanceof RegistryError, `${what}: ${String(e)}`);
    assert.equal(e.status, 403, what);
    // A HEAD answer has no body to carry the code; every other refusal names it.
    if (e.method !== 'HEAD') assert.equal(e.code, 'DENIED', what);
    return true;
  });
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ukc-client-auth-'));
  server = await startRegistryServer({
    listen: { host: '127.0.0.1', port: 0 },
    dataDir: join(work, 'registry'),
    logError: () => undefined,
    accessFor: (url) => (auth = createRegistryAuth({ publicUrl: url, dataDir: join(work, 'auth') })),
  });
  tok.root = (await readFile(join(work, 'auth', ROOT_TOKEN_FILE), 'utf8')).trim();
  auth.accounts.createAccount('alice');
  auth.accounts.createAccount('bob');
  tok.alice = auth.accounts.createToken('alice', { scope: 'registry' }).text;
  tok.alicePull = auth.accounts.createToken('alice', { scope: 'registry-pull' }).text;
});

after(async () => {
  for (const c of clients) c.close();
  await server?.close();
  auth?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('src/client against the auth-enabled registry', () => {
  it('token flow (account:<API token>): pushes alice/x, pulls it back, is refused on bob/x', async () => {
    const alice = clientWith({ username: 'alice', password: tok.alice! });
    await push(alice, 'alice/x');
    const got = new Map<string, Buffer>();
    const pulled = await pullImage({
      client: alice,
      repository: 'alice/x',
      reference: 'v1',
      onBlob: async (d, stream) => {
        const parts: Buffer[] = [];
        for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
        got.set(d.digest, Buffer.concat(parts));
      },
    });
    assert.equal(pulled.digest.text, sha(manifest));
    assert.deepEqual(got, blobs);
    await refused(push(alice, 'bob/x'), 'push to bob/x');
    await assert.rejects(alice.putManifest('bob/x', 'v1', manifest, MediaType.OciManifest), (e: unknown) => {
      assert.ok(e instanceof RegistryError);
      assert.deepEqual([e.method, e.status, e.code], ['PUT', 403, 'DENIED']);
      return true;
    });
    const root = clientWith({ token: tok.root! });
    await assert.rejects(root.listTags('bob/x'), (e: unknown) => e instanceof RegistryError && e.status === 404 && e.code === 'NAME_UNKNOWN');
    assert.deepEqual(await root.listTags('alice/x'), ['v1']);
  });

  it('the API token sent directly as Bearer: same rights', async () => {
    const alice = clientWith({ token: tok.alice! });
    await push(alice, 'alice/direct');
    await refused(push(alice, 'bob/direct'), 'push to bob/direct');
  });

  it('a pull-only token pulls but cannot push', async () => {
    const pullOnly = clientWith({ username: 'alice', password: tok.alicePull! });
    assert.equal((await pullOnly.getManifest('alice/x', 'v1')).digest.text, sha(manifest));
    await refused(push(pullOnly, 'alice/y'), 'push with a pull-only token');
  });

  it('a wrong token is refused with 401, never treated as anonymous', async () => {
    const bad = clientWith({ username: 'alice', password: tok.alicePull!.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) });
    await assert.rejects(bad.getManifest('alice/x', 'v1'), (e: unknown) => (e as { status?: number }).status === 401);
  });
});
