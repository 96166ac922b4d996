import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { MediaType } from '../oci/mediatypes.js';
import { AuthError, DigestMismatchError, PolicyError, RegistryError } from './errors.js';
import { FakeRegistry, sha256 } from './fake-registry.test-double.js';
import { pullImage, pushImage } from './image.js';
import { parseNextLink, parseUploadRange, readChunks, RegistryClient, resolveBaseUrl, type BlobSource } from './registry-client.js';

function bufferSource(data: Buffer): BlobSource {
  return { size: data.length, open: () => Readable.from([data]) };
}

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** A second server on another host name (localhost vs 127.0.0.1) that records what reaches it. */
async function otherHost(handler: http.RequestListener): Promise<{ server: http.Server; port: number; seen: http.IncomingHttpHeaders[] }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

function close(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}

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

  it('refuses a token realm on another host, sending it nothing; allows it when configured', async () => {
    const other = await otherHost((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'from-other' }));
    });
    try {
      fake.requireAuth = {
        authorization: 'Bearer from-other',
        challenge: `Bearer realm="http://localhost:${other.port}/token",service="x"`,
      };
      const client = fresh({ credentials: { username: 'alice', password: 'pw' } });
      await assert.rejects(client.ping(), (err: unknown) => err instanceof PolicyError && /another host/.test(err.message));
      assert.equal(other.seen.length, 0);
      client.close();
      const trusting = fresh({ credentials: { username: 'alice', password: 'pw' }, allowedTokenHosts: ['localhost'] });
      await trusting.ping();
      assert.equal(other.seen.length, 1);
      trusting.close();
    } finally {
      fake.requireAuth = undefined;
      await close(other.server);
    }
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

  it('drops credentials when a blob GET redirects to another host', async () => {
    const data = randomBytes(1000);
    const d = fake.putBlob('redir/a', data);
    const other = await otherHost((_req, res) => {
      res.writeHead(200, { 'content-length': data.length }).end(data);
    });
    fake.hooks = [
      (req, res) => {
        if (req.method !== 'GET' || !req.url?.endsWith(d)) return false;
        res.writeHead(307, { location: `http://localhost:${other.port}/storage/blob` }).end();
        return true;
      },
    ];
    try {
      const client = fresh({ credentials: { username: 'u', password: 'p' } });
      fake.requireAuth = undefined;
      // Make the client use Basic: answer the first request with a Basic challenge.
      let challenged = false;
      fake.hooks.unshift((req, res) => {
        if (challenged) return false;
        challenged = true;
        void req;
        res.writeHead(401, { 'www-authenticate': 'Basic realm="x"' }).end();
        return true;
      });
      assert.deepEqual(await collect(client.getBlob('redir/a', d)), data);
      assert.ok(fake.seen.some((s) => s.authorization?.startsWith('Basic ')), 'registry got credentials');
      assert.equal(other.seen.length, 1);
      assert.equal(other.seen[0]?.authorization, undefined, 'the other host got no credentials');
      client.close();
    } finally {
      fake.hooks = [];
      await close(other.server);
    }
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

  it('pushes and pulls an image; never fetches foreign urls[]', async () => {
    const foreign = await otherHost((_req, res) => res.writeHead(200).end('evil'));
    try {
      const config = Buffer.from('{"architecture":"x86_64","os":"kraftcloud"}');
      const layer = randomBytes(5000);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MediaType.OciManifest,
          config: { mediaType: MediaType.OciConfig, digest: sha256(config), size: config.length },
          layers: [{ mediaType: MediaType.OciLayerTar, digest: sha256(layer), size: layer.length, urls: [`http://localhost:${foreign.port}/layer`] }],
        }),
      );
      const client = fresh();
      const byDigest = new Map([[sha256(config), config], [sha256(layer), layer]]);
      const pushed = await pushImage({
        client,
        repository: 'img/a',
        tag: 'v1',
        manifest: { bytes: manifest, mediaType: MediaType.OciManifest },
        blobs: (desc) => bufferSource(byDigest.get(desc.digest) as Buffer),
      });
      assert.equal(pushed.digest.text, sha256(manifest));
      const got = new Map<string, Buffer>();
      const pulled = await pullImage({ client, repository: 'img/a', reference: 'v1', onBlob: async (d, s) => void got.set(d.digest, await collect(s)) });
      assert.equal(pulled.digest.text, sha256(manifest));
      assert.deepEqual(got, byDigest);
      assert.equal(foreign.seen.length, 0, 'foreign url was not fetched');
      client.close();
    } finally {
      await close(foreign.server);
    }
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

  it('pulls from a mirror first, falls back to the upstream, and keeps upstream credentials away from mirrors', async () => {
    const mirror = await new FakeRegistry().start();
    try {
      const onMirror = randomBytes(700);
      const onlyUpstream = randomBytes(900);
      const d1 = mirror.putBlob('mir/a', onMirror);
      fake.putBlob('mir/a', onMirror);
      const d2 = fake.putBlob('mir/a', onlyUpstream);
      const client = fresh({ mirrors: [mirror.base], credentials: { token: 'upstream-secret' } });
      const before = fake.seen.length;
      assert.deepEqual(await collect(client.getBlob('mir/a', d1)), onMirror);
      assert.equal(fake.seen.length, before, 'upstream not asked for what the mirror has');
      assert.deepEqual(await collect(client.getBlob('mir/a', d2)), onlyUpstream);
      assert.ok(mirror.seen.every((s) => s.authorization === undefined));
      assert.equal(fake.seen.at(-1)?.authorization, 'Bearer upstream-secret');
      client.close();
    } finally {
      await mirror.stop();
    }
  });
});

describe('transport policy (decision 7)', () => {
  it('uses plain HTTP only for loopback unless insecure', () => {
    assert.equal(resolveBaseUrl({ host: '127.0.0.1:5000' }).href, 'http://127.0.0.1:5000/');
    assert.equal(resolveBaseUrl({ host: 'localhost:5000' }).protocol, 'http:');
    assert.equal(resolveBaseUrl({ host: '[::1]:5000' }).protocol, 'http:');
    assert.equal(resolveBaseUrl({ host: 'registry.example' }).href, 'https://registry.example/');
    assert.throws(() => resolveBaseUrl({ baseUrl: 'http://registry.example' }), PolicyError);
    assert.throws(() => resolveBaseUrl({ baseUrl: 'http://10.0.0.1:5000' }), PolicyError);
    assert.equal(resolveBaseUrl({ baseUrl: 'http://registry.example', insecure: true }).protocol, 'http:');
    assert.equal(resolveBaseUrl({ host: 'registry.example', insecure: true }).protocol, 'http:');
    assert.throws(() => resolveBaseUrl({ baseUrl: 'https://u:p@registry.example' }), PolicyError);
    assert.throws(() => resolveBaseUrl({ baseUrl: 'file:///etc/passwd' }), PolicyError);
  });

  it('refuses a mirror on plain HTTP to a non-loopback host', () => {
    assert.throws(() => new RegistryClient({ host: '127.0.0.1:1', mirrors: ['http://mirror.example'] }), PolicyError);
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

describe('redirect policy', () => {
  it('refuses a redirect to plain http on a non-loopback host', async () => {
    const { Transport } = await import('./transport.js');
    const server = http.createServer((_req, res) => {
      res.writeHead(302, { location: 'http://10.255.255.1/x' }).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const t = new Transport();
    try {
      await assert.rejects(t.send({ method: 'GET', url: new URL(`http://127.0.0.1:${port}/b`) }), PolicyError);
    } finally {
      t.close();
      await close(server);
    }
  });
});
