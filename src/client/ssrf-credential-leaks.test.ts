// Security case 10 (reference/security-cases.md): SSRF and credential leaks.
// Credentials go only to configured hosts; token realms on other hosts are
// refused unless allowed; redirects to other hosts carry no credentials;
// foreign urls[] are never fetched; plain HTTP only for loopback unless insecure.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MediaType } from '../oci/mediatypes.js';
import { PolicyError } from './errors.js';
import { bufferSource, closeServer as close, collect, FakeRegistry, otherHost, sha256 } from './fake-registry.test-double.js';
import { pullImage, pushImage } from './image.js';
import { RegistryClient, resolveBaseUrl } from './registry-client.js';

describe('credentials and requests stay with the configured hosts', () => {
  let fake: FakeRegistry;
  before(async () => {
    fake = await new FakeRegistry().start();
  });
  after(async () => {
    await fake.stop();
  });
  const fresh = (extra: Partial<ConstructorParameters<typeof RegistryClient>[0]> = {}): RegistryClient =>
    new RegistryClient({ baseUrl: fake.base, retryDelayMs: 5, ...extra });

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
