import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { MediaType } from '../oci/mediatypes.js';
import { AuthError, DigestMismatchError, RegistryError, TransportError } from './errors.js';
import { bufferSource, collect, FakeRegistry, sha256 } from './fake-registry.test-double.js';
import { pushImage } from './image.js';
import { parseNextLink, parseUploadRange, readChunks, RegistryClient } from './registry-client.js';

describe('RegistryClient against an in-process fake registry', () => {
  let fake: FakeRegistry;
  before(async () => {
    fake = await new FakeRegistry().start();
  });
  after(async () => {
    await fake.stop();
  });
  const fresh = (extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient =>
    new RegistryClient({ baseUrl: fake.base, retryDelayMs: 5, ...extra });

  it('pushes monolithically and pulls back with the same digest', async () => {
    fake.hooks = [];
    fake.requireAuth = undefined;
    const client = fresh();
    const data = randomBytes(100_000);
    const d = sha256(data);
    const r = await client.pushBlob('mono/a', d, bufferSource(data));
    assert.equal(r.action, 'uploaded');
    assert.deepEqual(fake.blobs.get(d), data);
    assert.equal((await client.pushBlob('mono/a', d, bufferSource(data))).action, 'exists');
    assert.deepEqual(await collect(client.getBlob('mono/a', d)), data);
    client.close();
  });

  it('answers the Bearer challenge with a token from a same-host realm, caches it per scope', async () => {
    let tokenCalls = 0;
    let sawBasic: string | undefined;
    fake.hooks = [
      (req, res) => {
        if (!req.url?.startsWith('/token')) return false;
        tokenCalls++;
        sawBasic = req.headers.authorization;
        const u = new URL(req.url, fake.base);
        assert.equal(u.searchParams.get('service'), 'fake');
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ access_token: `tok-${u.searchParams.get('scope')}`, expires_in: 300 }));
        return true;
      },
    ];
    // The fake accepts one fixed token; the realm hands out per-scope tokens, so compute the right one lazily.
    fake.requireAuth = {
      authorization: 'Bearer tok-repository:auth/x:pull,push',
      challenge: `Bearer realm="${fake.base}/token",service="fake",scope="repository:auth/x:pull,push"`,
    };
    const client = fresh({ credentials: { username: 'alice', password: 's3cret' } });
    const data = randomBytes(2048);
    const d = sha256(data);
    await client.pushBlob('auth/x', d, bufferSource(data));
    assert.equal(sawBasic, `Basic ${Buffer.from('alice:s3cret').toString('base64')}`);
    const callsAfterPush = tokenCalls;
    assert.ok(callsAfterPush >= 1 && callsAfterPush <= 2, `token calls: ${callsAfterPush}`);
    await client.pushBlob('auth/x', d, bufferSource(data)); // cached tokens: no new token request
    assert.equal(tokenCalls, callsAfterPush);
    assert.deepEqual(fake.blobs.get(d), data);
    fake.requireAuth = undefined;
    fake.hooks = [];
    client.close();
  });

  it('answers a Basic challenge with configured credentials, and fails clearly without them', async () => {
    fake.requireAuth = { authorization: `Basic ${Buffer.from('bob:pw').toString('base64')}`, challenge: 'Basic realm="fake"' };
    try {
      const client = fresh({ credentials: { username: 'bob', password: 'pw' } });
      await client.ping();
      client.close();
      const anon = fresh();
      await assert.rejects(anon.ping(), (err: unknown) => err instanceof RegistryError && err.status === 401 && err.code === 'UNAUTHORIZED');
      anon.close();
    } finally {
      fake.requireAuth = undefined;
    }
  });

  it('a token endpoint refusing credentials gives an AuthError', async () => {
    fake.hooks = [
      (req, res) => {
        if (!req.url?.startsWith('/token')) return false;
        res.writeHead(401).end();
        return true;
      },
    ];
    fake.requireAuth = { authorization: 'Bearer never', challenge: `Bearer realm="${fake.base}/token"` };
    try {
      const client = fresh({ credentials: { username: 'x', password: 'y' } });
      await assert.rejects(client.ping(), (err: unknown) => err instanceof AuthError && err.status === 401);
      client.close();
    } finally {
      fake.requireAuth = undefined;
      fake.hooks = [];
    }
  });

  it('resumes a chunked upload from the session progress after a chunk fails mid-way', async () => {
    let patches = 0;
    let cut = false;
    fake.hooks = [
      (req, res) => {
        if (req.method !== 'PATCH') return false;
        patches++;
        if (patches !== 2 || cut) return false;
        cut = true;
        // Accept the first 10 000 bytes of the second chunk, then drop the connection.
        const id = /uploads\/([^/?]+)/.exec(req.url ?? '')?.[1] as string;
        const session = fake.uploads.get(id);
        assert.ok(session);
        let taken = 0;
        req.on('data', (c: Buffer) => {
          if (taken >= 10_000) return;
          const part = c.subarray(0, 10_000 - taken);
          taken += part.length;
          session.data = Buffer.concat([session.data, part]);
          if (taken >= 10_000) res.socket?.destroy();
        });
        return true;
      },
    ];
    const client = fresh({ chunkSize: 64 * 1024, monolithicMaxBytes: 0 });
    const data = randomBytes(300 * 1024 + 17);
    const d = sha256(data);
    const r = await client.pushBlob('chunky/a', d, bufferSource(data));
    assert.equal(r.action, 'uploaded');
    assert.ok(cut);
    assert.deepEqual(fake.blobs.get(d), data);
    const statusChecks = fake.seen.filter((s) => s.method === 'GET' && s.url.includes('/blobs/uploads/'));
    assert.ok(statusChecks.length >= 1, 'asked the session for its progress');
    const resumed = fake.seen.filter((s) => s.method === 'PATCH' && s.headers['content-range'] === `${64 * 1024 + 10_000}-${2 * 64 * 1024 - 1}`);
    assert.equal(resumed.length, 1, 'resent only the missing part of the chunk');
    fake.hooks = [];
    client.close();
  });

  it('retries a failed monolithic PUT in a new session and cancels the old one', async () => {
    let failed = false;
    fake.hooks = [
      (req, res) => {
        if (req.method !== 'PUT' || !req.url?.includes('/blobs/uploads/') || failed) return false;
        failed = true;
        req.resume();
        req.on('end', () => res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"try again"}]}'));
        return true;
      },
    ];
    const client = fresh();
    const data = randomBytes(10_000);
    const d = sha256(data);
    const before = fake.seen.length;
    assert.equal((await client.pushBlob('retry/a', d, bufferSource(data))).action, 'uploaded');
    const seen = fake.seen.slice(before).map((s) => s.method);
    assert.deepEqual(seen, ['HEAD', 'POST', 'PUT', 'DELETE', 'POST', 'PUT']);
    assert.deepEqual(fake.blobs.get(d), data);
    fake.hooks = [];
    client.close();
  });

  it('detects a digest mismatch on pull before the stream ends cleanly', async () => {
    const good = randomBytes(50_000);
    const d = fake.putBlob('bad/a', good);
    const evil = Buffer.from(good);
    evil[100] = (evil[100] as number) ^ 0xff;
    fake.blobs.set(d, evil);
    const client = fresh();
    await assert.rejects(collect(client.getBlob('bad/a', d)), DigestMismatchError);
    fake.blobs.set(d, Buffer.concat([good, Buffer.from('x')]));
    await assert.rejects(collect(client.getBlob('bad/a', d, { size: good.length })), DigestMismatchError);
    client.close();
  });

  it('resumes an interrupted blob download with a Range request', async () => {
    const data = randomBytes(400_000);
    const d = fake.putBlob('resume/a', data);
    let first = true;
    fake.hooks = [
      (req, res) => {
        if (req.method !== 'GET' || !req.url?.endsWith(d) || req.headers.range || !first) return false;
        first = false;
        res.writeHead(200, { 'content-length': data.length });
        res.write(data.subarray(0, 150_000), () => setTimeout(() => res.socket?.destroy(), 20));
        return true;
      },
    ];
    const client = fresh();
    assert.deepEqual(await collect(client.getBlob('resume/a', d)), data);
    assert.ok(fake.seen.some((s) => s.headers.range === 'bytes=150000-'), 'resumed from byte 150000');
    fake.hooks = [];
    client.close();
  });

  it('carries the registry error code and status in RegistryError', async () => {
    const client = fresh();
    await assert.rejects(client.getManifest('nope/x', 'latest'), (err: unknown) => {
      return err instanceof RegistryError && err.status === 404 && err.code === 'MANIFEST_UNKNOWN' && err.hasCode('MANIFEST_UNKNOWN');
    });
    client.close();
  });

  it('verifies a manifest fetched by digest', async () => {
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OciManifest, layers: [] }));
    const d = sha256(bytes);
    fake.manifests.set(`man/a:${d}`, { bytes: Buffer.from(`${bytes.toString()} `), type: MediaType.OciManifest });
    const client = fresh();
    await assert.rejects(client.getManifest('man/a', d), DigestMismatchError);
    fake.manifests.set(`man/a:${d}`, { bytes, type: MediaType.OciManifest });
    const got = await client.getManifest('man/a', d);
    assert.equal(got.digest.text, d);
    assert.equal(got.mediaType, MediaType.OciManifest);
    client.close();
  });

  it('lists tags across pages following Link', async () => {
    const client = fresh();
    const bytes = Buffer.from('{"schemaVersion":2,"layers":[]}');
    for (const t of ['a', 'b', 'c', 'd', 'e']) await client.putManifest('tags/x', t, bytes, MediaType.OciManifest);
    assert.deepEqual(await client.listTags('tags/x', { pageSize: 2 }), ['a', 'b', 'c', 'd', 'e']);
    assert.equal(fake.seen.filter((s) => s.url.startsWith('/v2/tags/x/tags/list')).length, 3);
    client.close();
  });

  it('pushes image blobs with bounded concurrency', async () => {
    let inFlight = 0;
    let peak = 0;
    fake.hooks = [
      (req) => {
        if (req.method !== 'PUT' || !req.url?.includes('/blobs/uploads/')) return false;
        inFlight++;
        peak = Math.max(peak, inFlight);
        req.once('close', () => inFlight--);
        return false;
      },
    ];
    const layers = Array.from({ length: 8 }, () => randomBytes(20_000));
    const config = Buffer.from('{"os":"kraftcloud"}');
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length },
        layers: layers.map((l) => ({ mediaType: MediaType.OciLayerTar, digest: sha256(l), size: l.length })),
      }),
    );
    const all = new Map([config, ...layers].map((b) => [sha256(b), b] as const));
    const client = fresh();
    const r = await pushImage({
      client,
      repository: 'conc/a',
      tag: 'v1',
      concurrency: 2,
      manifest: { bytes: manifest, mediaType: MediaType.OciManifest },
      // Slow sources keep uploads overlapping, so the limit is what bounds them.
      blobs: (d) => ({
        size: d.size,
        open: () =>
          Readable.from(
            (async function* () {
              const b = all.get(d.digest) as Buffer;
              yield b.subarray(0, 10);
              await new Promise((res) => setTimeout(res, 30));
              yield b.subarray(10);
            })(),
          ),
      }),
    });
    assert.equal(r.blobs.length, 9);
    assert.equal(peak, 2);
    fake.hooks = [];
    client.close();
  });

  it('gives up on a silent server after the idle timeout and the retries', async () => {
    fake.hooks = [(req) => req.url === '/v2/' && req.method === 'GET'];
    const client = fresh({ timeoutMs: 100, retries: 1 });
    const t0 = Date.now();
    await assert.rejects(client.ping(), (err: unknown) => err instanceof TransportError && /no activity/.test(err.message));
    assert.ok(Date.now() - t0 >= 200, 'both attempts waited for the timeout');
    assert.equal(fake.seen.filter((s) => s.url === '/v2/').length >= 2, true);
    fake.hooks = [];
    client.close();
  });

  it('mounts across repositories when the source has the blob', async () => {
    const data = randomBytes(3000);
    const d = fake.putBlob('mount/src', data);
    const client = fresh();
    const r = await client.pushBlob('mount/dst', d, bufferSource(data), { mountFrom: 'mount/src' });
    assert.equal(r.action, 'mounted');
    assert.ok(fake.links.has(`mount/dst@${d}`));
    client.close();
  });

});

describe('protocol helpers', () => {
  it('parses upload Range headers', () => {
    assert.equal(parseUploadRange(undefined), 0);
    assert.equal(parseUploadRange('0-0'), 0);
    assert.equal(parseUploadRange('0-99'), 100);
    assert.equal(parseUploadRange('bytes=0-1023'), 1024);
    assert.throws(() => parseUploadRange('5-10'));
    assert.throws(() => parseUploadRange('0-abc'));
  });

  it('parses Link next', () => {
    assert.equal(parseNextLink('</v2/a/tags/list?n=2&last=b>; rel="next"'), '/v2/a/tags/list?n=2&last=b');
    assert.equal(parseNextLink('</x>; rel="prev"'), undefined);
    assert.equal(parseNextLink(undefined), undefined);
  });

  it('regroups a stream into fixed-size chunks', async () => {
    const data = randomBytes(1000);
    const parts = [data.subarray(0, 7), data.subarray(7, 500), data.subarray(500)];
    const chunks: Buffer[] = [];
    for await (const c of readChunks(Readable.from(parts), 300)) chunks.push(c);
    assert.deepEqual(chunks.map((c) => c.length), [300, 300, 300, 100]);
    assert.deepEqual(Buffer.concat(chunks), data);
  });
});
