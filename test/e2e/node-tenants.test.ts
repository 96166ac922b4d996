// End to end, security case 14 on a real `ukcd node`: accounts made by root through POST /v1/users,
// bob gets for every operation on alice's instance exactly the answer he gets for a name or uuid
// that does not exist; anonymous requests are 401; quotas are enforced (EDQUOT); the node's local
// registry (/v2) uses the same accounts. Then the same node restarted with `--auth-url`, checking
// tokens with a real `ukcd controlplane`. Needs root (micro instances are Linux sandboxes).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { AccountStore } from '../../src/auth/index.js';
import { RegistryClient } from '../../src/client/index.js';
import { digestOf } from '../../src/oci/digest.js';
import { MediaType } from '../../src/oci/mediatypes.js';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, newEnv, startCentral, startDaemon, startNode, stopDaemon, UKCD, waitInstance, type ApiResult, type Daemon, type TestEnv } from './node-support.js';

const root = process.getuid?.() === 0;
const GHOST_UUID = '00000000-0000-4000-8000-000000000000';
let env: TestEnv;
let central: Daemon | undefined;
let node: Daemon | undefined;
let controlplane: Daemon | undefined;

before(async () => {
  if (!root) return;
  env = newEnv('node-tenants');
  central = await startCentral(env);
  await buildAndPush(env, busyboxRootfs(env.dir, 'alice only\n'), central.url, 'alice/box', 'latest', ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www']);
  node = await startNode(env, central.url);
});

after(async () => {
  if (!root) return;
  await stopDaemon(node);
  await stopDaemon(controlplane);
  await stopDaemon(central);
  await cleanupEnv(env);
});

/** The answer with what legitimately differs (time, the echoed selector) blanked. */
function comparable(r: ApiResult, selector: string): unknown {
  const text = JSON.stringify({ ...r.body, op_time_us: 0 }).split(selector).join('<selector>');
  return { status: r.status, body: JSON.parse(text) as unknown };
}

/** Like `api`, but sends a JSON body on any verb (the v1 API takes bodies on GET too; fetch does not). */
function call(base: string, method: string, path: string, body: unknown, token: string): Promise<ApiResult> {
  const text = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(`${base}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(text ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) } : {}) }, timeout: 30_000 }, (res) => {
      let out = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (out += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(out) as ApiResult['body'] }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(text);
  });
}

/** Every operation bob may try on one instance, by path and by batch body. */
async function bobSees(base: string, bob: string, selector: string, byUuid: boolean): Promise<unknown[]> {
  const item = byUuid ? { uuid: selector } : { name: selector };
  const calls: [string, string, unknown?][] = [
    ['GET', `/v1/instances/${selector}`],
    ['PUT', `/v1/instances/${selector}/start`],
    ['PUT', `/v1/instances/${selector}/stop`],
    ['GET', `/v1/instances/${selector}/log`],
    ['GET', `/v1/instances/${selector}/metrics`],
    ['PATCH', `/v1/instances/${selector}`, { tags: ['x'] }],
    ['DELETE', `/v1/instances/${selector}`],
    ['GET', '/v1/instances', [item]],
    ['PUT', '/v1/instances/start', [item]],
    ['PUT', '/v1/instances/stop', [item]],
    ['GET', '/v1/instances/log', [item]],
    ['DELETE', '/v1/instances', [item]],
  ];
  const out: unknown[] = [];
  for (const [method, path, body] of calls) out.push(comparable(await call(base, method, path, body, bob), selector));
  return out;
}

function tokenOf(r: ApiResult): string {
  const users = r.body.data?.users as { token?: string }[] | undefined;
  const token = users?.[0]?.token;
  assert.ok(token, JSON.stringify(r.body));
  return token;
}

let alice = '';
let bob = '';
let aliceUuid = '';

test('ukcd node --accounts-db: root makes accounts; bob cannot tell alice\'s instance from a missing one', async (t) => {
  if (!root) return t.skip('needs root');
  const base = (node as Daemon).url;
  alice = tokenOf(await api(base, 'POST', '/v1/users', { name: 'alice', quotas: { instances: 2 } }));
  bob = tokenOf(await api(base, 'POST', '/v1/users', { name: 'bob' }));
  // Only root creates accounts; without a token nothing at all.
  const byBob = await api(base, 'POST', '/v1/users', { name: 'mallory' }, bob);
  assert.equal(byBob.status, 403);
  const anonymous = await api(base, 'GET', '/v1/instances', undefined, '');
  assert.equal(anonymous.status, 401);
  assert.equal(anonymous.body.status, 'error');
  assert.equal((await api(base, 'GET', '/v1/healthz', undefined, '')).status, 200);

  const created = await api(base, 'POST', '/v1/instances', { image: 'alice/box:latest', name: 'secret', memory_mb: 32 }, alice);
  assert.equal(created.status, 200, JSON.stringify(created.body));
  aliceUuid = (created.body.data?.instances as { uuid: string }[])[0]!.uuid;
  // Root sees it by uuid (names are per account: root's "secret" would be root's own); alice by name too.
  const running = await waitInstance(base, aliceUuid, (i) => i.state === 'running').catch(() => undefined);
  assert.equal(running?.state, 'running');
  assert.equal(((await api(base, 'GET', '/v1/instances/secret', undefined, alice)).body.data?.instances as { state: string }[])[0]?.state, 'running');

  const seen = await bobSees(base, bob, 'secret', false);
  assert.deepEqual(seen, await bobSees(base, bob, 'no-such-instance', false));
  // ... and that answer is "not found" (ENOENT), not some other refusal.
  for (const answer of seen as { status: number; body: { errors?: { error: number }[] } }[]) {
    assert.equal(answer.status, 404, JSON.stringify(answer));
    assert.equal(answer.body.errors?.[0]?.error, 2);
  }
  assert.deepEqual(await bobSees(base, bob, aliceUuid, true), await bobSees(base, bob, GHOST_UUID, true));
  const bobList = await api(base, 'GET', '/v1/instances', undefined, bob);
  assert.deepEqual(bobList.body.data?.instances, []);
  // Nothing bob did touched it.
  const still = await api(base, 'GET', `/v1/instances/${aliceUuid}`, undefined, alice);
  assert.equal((still.body.data?.instances as { state: string; tags?: string[] }[])[0]?.state, 'running');
});

test('bob naming alice\'s image, already in the node\'s cache, gets exactly the answer of an image that does not exist', async (t) => {
  if (!root) return t.skip('needs root');
  const base = (node as Daemon).url;
  const mine = await api(base, 'GET', `/v1/instances/${aliceUuid}`, undefined, alice);
  const pinned = (mine.body.data?.instances as { image: string }[])[0]!.image;
  const digest = pinned.slice(pinned.indexOf('@') + 1);
  const cases: [string, string][] = [
    ['alice/box:latest', 'alice/no-such-box:latest'],
    [`alice/box@${digest}`, `alice/box@sha256:${'0'.repeat(64)}`],
  ];
  for (const [real, ghost] of cases) {
    const a = await api(base, 'POST', '/v1/instances', { image: real, name: 'borrowed', memory_mb: 32 }, bob);
    const b = await api(base, 'POST', '/v1/instances', { image: ghost, name: 'borrowed', memory_mb: 32 }, bob);
    assert.equal(a.status, 404, JSON.stringify(a.body));
    assert.equal((a.body.errors as { error: number }[] | undefined)?.[0]?.error, 2);
    assert.deepEqual(comparable(a, real), comparable(b, ghost));
  }
  assert.deepEqual((await api(base, 'GET', '/v1/instances', undefined, bob)).body.data?.instances, []);
});

test('quotas on the real node: alice\'s third instance is EDQUOT (122); GET /v1/users/quotas shows her usage', async (t) => {
  if (!root) return t.skip('needs root');
  const base = (node as Daemon).url;
  const second = await api(base, 'POST', '/v1/instances', { image: 'alice/box:latest', name: 'spare', memory_mb: 32, autostart: false }, alice);
  assert.equal(second.status, 200, JSON.stringify(second.body));
  const third = await api(base, 'POST', '/v1/instances', { image: 'alice/box:latest', name: 'extra', memory_mb: 32 }, alice);
  assert.equal((third.body.errors as { error: number }[] | undefined)?.[0]?.error, 122, JSON.stringify(third.body));
  const q = await api(base, 'GET', '/v1/users/quotas', undefined, alice);
  const [quota] = q.body.data?.quotas as { used: Record<string, number>; hard: Record<string, number> }[];
  assert.deepEqual([quota?.used.instances, quota?.used.live_memory_mb, quota?.used.services], [2, 32, 0]);
  assert.equal(quota?.hard.instances, 2);
});

test('the node\'s local registry uses the same accounts: alice pushes her namespace, bob cannot read it, anonymous cannot list', async (t) => {
  if (!root) return t.skip('needs root');
  const base = (node as Daemon).url;
  const layer = Buffer.from('alice private layer');
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digestOf(layer).text] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(config).text, size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(layer).text, size: layer.length }],
    }),
  );
  const push = async (token: string | undefined, repo: string): Promise<void> => {
    const client = new RegistryClient({ baseUrl: base, ...(token ? { credentials: { token } } : {}) });
    try {
      for (const b of [layer, config]) await client.pushBlob(repo, digestOf(b), { size: b.length, open: () => Readable.from([b]) });
      await client.putManifest(repo, 'v1', manifest, MediaType.OciManifest);
    } finally {
      client.close();
    }
  };
  await push(alice, 'alice/private');
  await assert.rejects(push(bob, 'alice/private'), /denied|403|401|unauthori/i);
  await assert.rejects(push(undefined, 'alice/other'), /401|unauthori|credentials/i);
  const read = async (token: string): Promise<string> => {
    const client = new RegistryClient({ baseUrl: base, credentials: { token } });
    try {
      return (await client.getManifest('alice/private', 'v1')).digest.text;
    } finally {
      client.close();
    }
  };
  assert.equal(await read(alice), digestOf(manifest).text);
  await assert.rejects(read(bob), /denied|403|401|unknown|unauthori/i);
  const catalog = await fetch(`${base}/v2/_catalog`);
  assert.equal(catalog.status, 401);
});

test('ukcd node --auth-url: tokens checked by the control plane; the same isolation and quotas', async (t) => {
  if (!root) return t.skip('needs root');
  controlplane = await startDaemon(['controlplane', '--listen', '127.0.0.1:0', '--data', join(env.dir, 'cp')]);
  // Accounts live in the control plane's database now (opened beside the running process: WAL).
  const accounts = new AccountStore({ path: join(env.dir, 'cp', 'auth.db') });
  let cpAlice: string;
  let cpBob: string;
  try {
    accounts.createAccount('alice', { quotas: { maxInstances: 2 } });
    accounts.createAccount('bob');
    cpAlice = accounts.createToken('alice').text;
    cpBob = accounts.createToken('bob').text;
  } finally {
    accounts.close();
  }
  await stopDaemon(node);
  node = await startNode(env, (central as Daemon).url, '127.0.0.1:0', ['--auth-url', controlplane.url]);
  const base = node.url;
  assert.equal((await api(base, 'GET', '/v1/instances', undefined, '')).status, 401);
  // The old node-local tokens mean nothing here.
  assert.equal((await api(base, 'GET', '/v1/instances', undefined, alice)).status, 401);
  const mine = await api(base, 'GET', `/v1/instances/${aliceUuid}`, undefined, cpAlice);
  assert.equal(mine.status, 200, JSON.stringify(mine.body));
  assert.deepEqual(await bobSees(base, cpBob, aliceUuid, true), await bobSees(base, cpBob, GHOST_UUID, true));
  assert.deepEqual(await bobSees(base, cpBob, 'secret', false), await bobSees(base, cpBob, 'no-such-instance', false));
  const third = await api(base, 'POST', '/v1/instances', { image: 'alice/box:latest', name: 'extra', memory_mb: 32 }, cpAlice);
  assert.equal((third.body.errors as { error: number }[] | undefined)?.[0]?.error, 122, JSON.stringify(third.body));
  // Accounts are made on the control plane, not here.
  const made = await api(base, 'POST', '/v1/users', { name: 'carol' }, cpAlice);
  assert.equal(made.status, 403);
});

test('ukcd node refuses to start without choosing how to authenticate (there is no silent open default)', async (t) => {
  if (!root) return t.skip('needs root');
  const none = spawnSync(process.execPath, [UKCD, 'node', '--home', join(env.dir, 'unused')], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(none.status, 2, none.stderr);
  assert.match(none.stderr, /exactly one of --accounts-db PATH, --auth-url URL or --no-auth/);
  const both = spawnSync(process.execPath, [UKCD, 'node', '--home', join(env.dir, 'unused'), '--no-auth', '--auth-url', 'http://127.0.0.1:1'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(both.status, 2, both.stderr);
  const creds = spawnSync(process.execPath, [UKCD, 'node', '--home', join(env.dir, 'unused'), '--auth-url', 'http://u:p@127.0.0.1:1'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(creds.status, 2, creds.stderr);
});

test('ukcd node --public-url: the registry token realm names the public address, not the listen address', async (t) => {
  if (!root) return t.skip('needs root');
  const own = newEnv('node-public-url');
  let pub: Daemon | undefined;
  try {
    pub = await startNode(own, (central as Daemon).url, '127.0.0.1:0', ['--public-url', 'https://node.ukc.test:7443', '--accounts-db', join(own.dir, 'auth.db')]);
    const res = await fetch(`${pub.url}/v2/`);
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /realm="https:\/\/node\.ukc\.test:7443\/v2\/token"/);
    const bad = spawnSync(process.execPath, [UKCD, 'node', '--home', join(own.dir, 'unused'), '--no-auth', '--public-url', 'https://x.test/path'], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(bad.status, 2, bad.stderr);
  } finally {
    await stopDaemon(pub);
    await cleanupEnv(own);
  }
});
