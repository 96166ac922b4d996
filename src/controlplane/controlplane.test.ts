import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient } from '../client/index.js';
import { PlatformApiError, PlatformAuthError, PlatformClient } from '../client/platform.js';
import { digestOf } from '../oci/digest.js';
import { MediaType } from '../oci/mediatypes.js';
import { startControlPlane, type ControlPlane } from './index.js';
import { stallMidBlob } from '../registry/testkit.js';
import { DEFAULT_IDLE_TIMEOUT_MS } from '../util/listener.js';
import { makeHarness } from '../node/harness.test-support.js';

async function withControlPlane(fn: (cp: ControlPlane, rootToken: string, dir: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-cp-'));
  const cp = await startControlPlane({ dataDir: dir, host: '127.0.0.1', port: 0, registryName: 'index.ukc.test', logError: () => {} });
  try {
    await fn(cp, readFileSync(cp.rootTokenFile, 'utf8').trim(), dir);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Pushes a tiny image (config + one layer) under `repo:tag` with `token`. */
async function pushImage(cp: ControlPlane, token: string, repo: string, tag: string, payload: string): Promise<string> {
  const client = new RegistryClient({ baseUrl: cp.url, credentials: { token } });
  try {
    const layer = Buffer.from(payload);
    const config = Buffer.from(JSON.stringify({ architecture: 'x86_64', os: 'kraftcloud', rootfs: { type: 'layers', diff_ids: [digestOf(layer).text] } }));
    await client.pushBlob(repo, digestOf(layer), { size: layer.length, open: () => Readable.from([layer]) });
    await client.pushBlob(repo, digestOf(config), { size: config.length, open: () => Readable.from([config]) });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OciManifest,
        config: { mediaType: MediaType.OciConfig, digest: digestOf(config).text, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer).text, size: layer.length }],
      }),
    );
    await client.putManifest(repo, tag, manifest, MediaType.OciManifest);
    return digestOf(manifest).text;
  } finally {
    client.close();
  }
}

test('pushed images appear in GET /v1/images as {owner}/{registry}/{image} with tag digests, and leave it at once on delete', async () => {
  await withControlPlane(async (cp, root) => {
    const alice = cp.accounts.createAccount('alice');
    void alice;
    const aliceToken = cp.accounts.createToken('alice').text;
    const d1 = await pushImage(cp, aliceToken, 'alice/httpserver', 'latest', 'one');
    await pushImage(cp, root, 'official/base-compat', 'latest', 'runtime');
    const api = new PlatformClient({ baseUrl: cp.url, token: aliceToken });
    const listed = await api.listCentralImages();
    assert.deepEqual(
      listed.map((i) => ({ name: i.name, tags: i.tags?.map((t) => ({ name: t.name, digest: t.digest })) })),
      [
        { name: 'alice/index.ukc.test/httpserver', tags: [{ name: 'latest', digest: d1 }] },
        { name: 'official/index.ukc.test/base-compat', tags: [{ name: 'latest', digest: listed[1]!.tags![0]!.digest }] },
      ],
    );
    // The contract's size (manifest + config + layers, > the manifest alone) and push time.
    const tag = listed[0]!.tags![0]! as { size?: number; push_time?: string };
    assert.ok(typeof tag.size === 'number' && tag.size > 300, `size ${tag.size}`);
    assert.ok(Math.abs(Date.parse(tag.push_time ?? '') - Date.now()) < 60_000);
    assert.deepEqual((await api.listCentralImages({ namespace: 'alice', details: false })).map((i) => [i.name, i.tags]), [['alice/index.ukc.test/httpserver', undefined]]);
    const removed = await api.deleteCentralImages(['alice/httpserver']);
    assert.deepEqual(removed[0]!.tags, [{ name: 'latest', digest: d1 }]);
    assert.deepEqual((await api.listCentralImages({ namespace: 'alice' })).length, 0);
    // The registry agrees: the tag is gone.
    const reg = new RegistryClient({ baseUrl: cp.url, credentials: { token: aliceToken } });
    try {
      assert.equal(await reg.headManifest('alice/httpserver', 'latest'), undefined);
    } finally {
      reg.close();
    }
    await assert.rejects(api.deleteCentralImages(['alice/httpserver']), (e: unknown) => e instanceof PlatformApiError && e.errno === 2);
  });
});

test('tenants: another account neither sees nor deletes alice\'s image (ENOENT, as if missing); official images are listed to all', async () => {
  await withControlPlane(async (cp, root) => {
    cp.accounts.createAccount('alice');
    cp.accounts.createAccount('bob');
    const aliceToken = cp.accounts.createToken('alice').text;
    const bobToken = cp.accounts.createToken('bob').text;
    await pushImage(cp, aliceToken, 'alice/secret', 'v1', 'a');
    await pushImage(cp, root, 'official/base-compat', 'latest', 'r');
    const bob = new PlatformClient({ baseUrl: cp.url, token: bobToken });
    assert.deepEqual((await bob.listCentralImages()).map((i) => i.name), ['official/index.ukc.test/base-compat']);
    await assert.rejects(bob.deleteCentralImages(['alice/secret:v1']), (e: unknown) => e instanceof PlatformApiError && e.errno === 2 && e.status === 404);
    await assert.rejects(bob.deleteCentralImages(['official/base-compat']), (e: unknown) => e instanceof PlatformApiError && e.status === 403);
    const rootApi = new PlatformClient({ baseUrl: cp.url, token: root });
    assert.equal((await rootApi.listCentralImages()).length, 2);
  });
});

test('a bad token is refused with 401 on /v1 and on registry pushes; healthz needs none', async () => {
  await withControlPlane(async (cp) => {
    const bad = new PlatformClient({ baseUrl: cp.url, token: 'ukc_' + '0'.repeat(32) + '_' + 'A'.repeat(43) });
    await assert.rejects(bad.listCentralImages(), PlatformAuthError);
    await assert.rejects(bad.whoami(), /token was rejected/);
    await new PlatformClient({ baseUrl: cp.url }).call('GET', '/v1/healthz');
    await assert.rejects(pushImage(cp, 'ukc_' + '1'.repeat(32) + '_' + 'B'.repeat(43), 'alice/x', 'latest', 'x'), /401|UNAUTHORIZED|unauthori/i);
  });
});

test('nodes register (root only), report health, and make up metros', async () => {
  await withControlPlane(async (cp, root) => {
    const api = new PlatformClient({ baseUrl: cp.url, token: root });
    assert.deepEqual(await api.whoami().then((w) => [w.account, w.role]), ['root', 'root']);
    const [node] = await api.registerNode({ name: 'node1', metro: 'dev', api: 'http://127.0.0.1:9999/', registry: '127.0.0.1:9999' });
    assert.equal(node!.state, 'ready');
    const again = await api.registerNode({ name: 'node1', metro: 'dev', api: 'http://127.0.0.1:9998' });
    assert.equal(again[0]!.uuid, node!.uuid);
    const [metro] = await api.listMetros();
    assert.deepEqual([metro!.name, metro!.api, metro!.nodes], ['dev', 'http://127.0.0.1:9998', 1]);
    const [sick] = await api.reportNodeHealth(node!.uuid, { healthy: false, instances: 3 });
    assert.equal(sick!.state, 'error');
    assert.equal((await api.listMetros())[0]!.api, undefined);
    assert.equal((await api.listNodes())[0]!.instances, 3);
    cp.accounts.createAccount('carol');
    const carol = new PlatformClient({ baseUrl: cp.url, token: cp.accounts.createToken('carol').text });
    await assert.rejects(carol.registerNode({ name: 'evil', metro: 'dev', api: 'http://10.0.0.1' }), (e: unknown) => e instanceof PlatformAuthError && e.status === 403);
    assert.deepEqual(await carol.listNodes(), []);
    await assert.rejects(api.registerNode({ name: 'Bad Name', metro: 'dev', api: 'http://x' }), /DNS label/);
    await assert.rejects(api.call('POST', '/v1/nodes', { name: 'n2', metro: 'dev', api: 'http://x', extra: 1 }), /extra: unknown field/);
    await assert.rejects(api.call('POST', '/v1/nodes', { name: 'n2', metro: 'dev', api: 'file:///etc/passwd' }), /http\(s\) URL/);
    // Operations of the contract a self-hosted control plane does not offer: EOPNOTSUPP, not "no such node".
    for (const [method, path] of [['GET', '/v1/nodes/wait'], ['GET', `/v1/nodes/${node!.uuid}/wait`], ['PATCH', '/v1/nodes'], ['PATCH', `/v1/nodes/${node!.uuid}`], ['POST', '/v1/nodes/activate']] as const) {
      await assert.rejects(api.call(method, path, method === 'GET' ? undefined : []), (e: unknown) => e instanceof PlatformApiError && e.status === 501 && e.errno === 95, `${method} ${path}`);
    }
  });
});

test('one framework: a wrong method, an oversize body and an unknown path answer the same on the control plane and the node', async () => {
  const node = await makeHarness({ limits: { maxBodyBytes: 1024 * 1024 } });
  try {
    await withControlPlane(async (cp, root) => {
      const auth = { authorization: `Bearer ${root}` };
      const shape = (status: number, body: { status: string; errors?: { status: number; error: number }[] }) => [status, body.status, body.errors?.[0]?.status, body.errors?.[0]?.error];
      const onCp = async (method: string, path: string, body?: string) => {
        const res = await fetch(`${cp.url}${path}`, { method, headers: auth, ...(body !== undefined ? { body } : {}) });
        return shape(res.status, (await res.json()) as never);
      };
      const onNode = async (method: string, path: string, body?: string) => {
        const res = await node.call(method, path, body);
        return shape(res.status, res.body as never);
      };
      const big = 'x'.repeat(1024 * 1024 + 1);
      assert.deepEqual(await onCp('PATCH', '/v1/healthz'), [405, 'error', 405, 22]);
      assert.deepEqual(await onNode('PATCH', '/v1/healthz'), [405, 'error', 405, 22]);
      assert.deepEqual(await onCp('DELETE', '/v1/images', big), await onNode('POST', '/v1/instances', big));
      assert.deepEqual(await onCp('DELETE', '/v1/images', big), [413, 'error', 413, 27]);
      assert.deepEqual(await onCp('GET', '/v1/nope'), [404, 'error', 404, 2]);
      assert.deepEqual(await onNode('GET', '/v1/nope'), [404, 'error', 404, 2]);
    });
  } finally {
    await node.cleanup();
  }
});

test('hostile bodies: oversized, not JSON, wrong shapes change nothing', async () => {
  await withControlPlane(async (cp, root) => {
    const api = new PlatformClient({ baseUrl: cp.url, token: root });
    await assert.rejects(api.call('DELETE', '/v1/images', { name: 'x' }), /expected array/);
    await assert.rejects(api.call('DELETE', '/v1/images', [{ name: '../../etc' }]), /invalid image name/);
    await assert.rejects(api.call('POST', '/v1/nodes', 'x'.repeat(2 * 1024 * 1024)), (e: unknown) => e instanceof PlatformApiError && e.status === 413);
    await assert.rejects(api.call('GET', '/v1/images?details=maybe'), /true or false/);
    assert.deepEqual(await api.listNodes(), []);
  });
});

test('per-account request rate: over the burst is 429 with Retry-After in the v1 envelope; /v1/auth answers quotas', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-cp-'));
  const cp = await startControlPlane({ dataDir: dir, host: '127.0.0.1', port: 0, logError: () => {}, rateLimit: { ratePerSecond: 0.25, burst: 2 } });
  try {
    const root = readFileSync(cp.rootTokenFile, 'utf8').trim();
    cp.accounts.createAccount('alice', { quotas: { maxInstances: 5 } });
    const alice = cp.accounts.createToken('alice').text;
    const call = (token: string): Promise<Response> => fetch(`${cp.url}/v1/auth`, { headers: { authorization: `Bearer ${token}` } });
    const first = await call(alice);
    assert.equal(first.status, 200);
    const body = (await first.json()) as { data: { auth: Record<string, unknown>[] } };
    assert.deepEqual(body.data.auth[0], {
      status: 'success',
      account: 'alice',
      role: 'user',
      token_scope: 'full',
      quotas: { instances: 5, live_memory_mb: 4096, services: 8 },
    });
    assert.equal((await call(alice)).status, 200);
    const limited = await call(alice);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '4');
    const env = (await limited.json()) as { status: string; errors: { status: number; error: number }[] };
    assert.equal(env.status, 'error');
    assert.equal(env.errors[0]?.status, 429);
    // Counted per account: root is not slowed down by alice.
    assert.equal((await call(root)).status, 200);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the registry token realm names the public URL when one is set, else the listen address', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-cp-'));
  const cp = await startControlPlane({ dataDir: dir, host: '127.0.0.1', port: 0, publicUrl: 'https://cp.ukc.test:7443/', logError: () => {} });
  const plain = await startControlPlane({ dataDir: join(dir, 'plain'), host: '127.0.0.1', port: 0, logError: () => {} });
  try {
    assert.equal(cp.publicUrl, 'https://cp.ukc.test:7443');
    assert.equal(cp.registryHost, 'cp.ukc.test:7443');
    assert.match(cp.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${cp.url}/v2/alice/app/tags/list`);
    assert.equal(res.status, 401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    assert.match(challenge, /^Bearer /);
    assert.match(challenge, /realm="https:\/\/cp\.ukc\.test:7443\/v2\/token"/);
    const other = await fetch(`${plain.url}/v2/alice/app/tags/list`);
    assert.equal(other.status, 401);
    assert.ok((other.headers.get('www-authenticate') ?? '').includes(`realm="${plain.url}/v2/token"`));
    assert.equal(plain.publicUrl, plain.url);
  } finally {
    await cp.close();
    await plain.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the central registry cuts a client that sends half a blob and stalls (the shared idle timeout)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-cp-'));
  const cp = await startControlPlane({ dataDir: dir, host: '127.0.0.1', port: 0, idleTimeoutMs: 300, logError: () => {} });
  try {
    const root = readFileSync(cp.rootTokenFile, 'utf8').trim();
    const stalled = await stallMidBlob(cp.url, 'root/idle', { authorization: `Bearer ${root}` }, 5_000);
    assert.equal(stalled.outcome, 'cut');
    assert.equal(stalled.status, undefined, 'cut mid-body, not answered (the upload was accepted)');
    assert.ok(stalled.ms >= 250);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
  const plain = await startControlPlane({ dataDir: dir, host: '127.0.0.1', port: 0, logError: () => {} });
  try {
    assert.equal(plain.server.timeout, DEFAULT_IDLE_TIMEOUT_MS, 'ukcd dev starts it with the shared default');
  } finally {
    await plain.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
