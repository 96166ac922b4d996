/**
 * The node API through the official SDK (`@unikraft/cloud@0.2.0`, the contract) only: a real
 * node API (src/node's composition over the runtime and image test doubles, so no root, no
 * sandbox) served on a loopback socket, driven by the SDK's porcelain and plumbing clients.
 * Asserts the data (get by name returns that instance, paging yields each item once), and
 * validates every JSON answer against the SDK-derived schemas (test/contract) with ajv.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { collect, UnikraftCloud, UnikraftCloudError, type FetchLike } from '@unikraft/cloud';
import { makeHarness, type Harness } from '../../src/node/harness.test-support.js';
import { systemClock } from '../../src/node/clock.js';
import { accountPrincipal } from '../../src/auth/index.js';

const CONTRACT = new URL('../../../test/contract/', import.meta.url);
const IMG = 'alice/httpserver:latest';

interface Operation {
  api: string;
  op: string;
  method: string;
  path: string;
  response: string;
}

interface Answer {
  method: string;
  url: URL;
  status: number;
  body: unknown;
}

const operations = (JSON.parse(readFileSync(new URL('sdk-0.2.0-operations.json', CONTRACT), 'utf8')) as Operation[]).filter((o) => o.api === 'platform');
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(JSON.parse(readFileSync(new URL('sdk-0.2.0-platform-models.schema.json', CONTRACT), 'utf8')) as object, 'platform');
const validators = new Map<string, ValidateFunction>();
function validatorFor(model: string): ValidateFunction {
  let f = validators.get(model);
  if (!f) {
    f = ajv.compile({ $ref: `platform#/definitions/${model}` });
    validators.set(model, f);
  }
  return f;
}

/** The contract's operation for a request: same method, path pattern matched, literal segments preferred. */
function operationOf(method: string, pathname: string): Operation | undefined {
  const parts = pathname.split('/').filter((s) => s !== '');
  const matches = operations.filter((o) => {
    const segs = o.path.split('/').filter((s) => s !== '');
    return o.method === method && segs.length === parts.length && segs.every((s, i) => s.startsWith('{') || s === parts[i]);
  });
  const literals = (o: Operation): number => o.path.split('/').filter((s) => s !== '' && !s.startsWith('{')).length;
  return matches.sort((a, b) => literals(b) - literals(a))[0];
}

/**
 * The body without its failed items (`status: "error"`), and those items. The SDK's models merge
 * the per-item envelope into the resource, so a resource's required fields are required of a
 * failed item too, which cannot have them (`GET ?name=missing` has no uuid or created_at to give):
 * failed items are checked for the envelope's own fields (message, errno) instead.
 */
function withoutFailedItems(body: unknown): { body: unknown; failedItems: Record<string, unknown>[] } {
  const failedItems: Record<string, unknown>[] = [];
  if (typeof body !== 'object' || body === null || !('data' in body) || typeof body.data !== 'object' || body.data === null) return { body, failedItems };
  const data: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(body.data)) {
    if (!Array.isArray(value)) {
      data[key] = value;
      continue;
    }
    const items = value as Record<string, unknown>[];
    failedItems.push(...items.filter((i) => i.status === 'error'));
    data[key] = items.filter((i) => i.status !== 'error');
  }
  return { body: { ...body, data }, failedItems };
}

let h: Harness;
let server: Server;
let baseUrl: string;
let ukc: UnikraftCloud;
const answers: Answer[] = [];

/** The SDK's fetch, recording every answer for the schema check. */
const recordingFetch: FetchLike = async (input, init) => {
  const res = await fetch(input, init);
  const text = await res.clone().text();
  answers.push({ method: (init?.method ?? 'GET').toUpperCase(), url: new URL(input), status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) });
  return res;
};

before(async () => {
  // An account with quotas, as on a multi-tenant node (GET /v1/users/quotas answers them).
  const principal = accountPrincipal('sdk', 'user', { maxInstances: 50, maxLiveMemoryMb: 65536, maxServices: 10 });
  h = await makeHarness({ clock: systemClock, authenticate: () => principal, gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) } });
  h.catalog.images.push({
    repository: 'index.node.local/alice/httpserver',
    digest: `sha256:${'a'.repeat(64)}`,
    createdAt: new Date(0),
    owner: 'sdk',
    tags: [IMG],
    initrdOrRom: true,
    sizeInBytes: 4096,
    args: ['/usr/bin/python3', '/src/server.py'],
    env: {},
  });
  server = createServer(h.api.handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  assert.ok(addr !== null && typeof addr === 'object');
  baseUrl = `http://127.0.0.1:${addr.port}`;
  // An http(s) URL as the metro: the only endpoint, nothing discovered from a control plane.
  ukc = new UnikraftCloud({ metro: baseUrl, token: 'sdk-contract', fetch: recordingFetch, proxyFromEnv: false });
});

after(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  await h.cleanup();
});

test('instances: create, get by name and by uuid return that instance, list pages each instance once, delete', async () => {
  const made = [];
  for (const n of [1, 2, 3, 4, 5]) made.push(await ukc.instances.create({ image: IMG, name: `sdk-${n}`, autostart: false }));
  assert.deepEqual(made.map((i) => [i.name, i.type]), [1, 2, 3, 4, 5].map((n) => [`sdk-${n}`, 'micro']));

  const third = await ukc.instances.get({ name: 'sdk-3' });
  assert.equal(third.name, 'sdk-3');
  assert.equal(third.uuid, made[2]!.uuid);
  const fourth = await ukc.instances.get({ uuid: made[3]!.uuid! });
  assert.equal(fourth.name, 'sdk-4');

  const paged = await collect(ukc.instances.list({ pageSize: 2 }));
  assert.deepEqual(paged.map((i) => i.name), ['sdk-1', 'sdk-2', 'sdk-3', 'sdk-4', 'sdk-5']);
  const pageRequests = answers.filter((a) => a.method === 'GET' && a.url.pathname === '/v1/instances' && a.url.searchParams.get('count') === '2');
  assert.equal(pageRequests.length, 3, 'pages of 2, 2 and 1');

  const updated = await ukc.instances.update({ name: 'sdk-1' }, { memory_mb: 256, tags: ['blue'] });
  assert.equal(updated.uuid, made[0]!.uuid);
  const reread = await ukc.instances.get({ name: 'sdk-1' });
  assert.equal(reread.memory_mb, 256);
  assert.deepEqual(reread.tags, ['blue']);

  const deleted = await ukc.instances.delete([{ name: 'sdk-5' }, { uuid: made[3]!.uuid! }]);
  assert.deepEqual(deleted.map((i) => i.name).sort(), ['sdk-4', 'sdk-5']);
  await assert.rejects(async () => ukc.instances.get({ name: 'sdk-5' }), (e: unknown) => e instanceof UnikraftCloudError && e.status === 404);
  assert.deepEqual((await collect(ukc.instances.list())).map((i) => i.name), ['sdk-1', 'sdk-2', 'sdk-3']);
});

test('instances: start, wait by query (state, timeout), logs, stop through the porcelain', async () => {
  const web = ukc.instances.get({ name: 'sdk-2' });
  await web.start();
  const waited = await ukc.instances.wait({ name: 'sdk-2' }, { state: 'running', timeoutSeconds: 5 });
  assert.equal(waited.state, 'running');
  const { output, state } = await ukc.instances.logs({ name: 'sdk-2' }, { offset: 0, limit: 5 });
  assert.equal(Buffer.from(output, 'base64').toString(), 'hello');
  assert.equal(state, 'running');
  const stopped = await ukc.instances.stop([{ name: 'sdk-2' }]);
  assert.deepEqual(stopped.map((i) => i.name), ['sdk-2']);
  await ukc.instances.wait({ name: 'sdk-2' }, { state: 'stopped', timeoutSeconds: 5 });
});

test('images: the plumbing client lists the node\'s images with GET /v1/images', async () => {
  const res = await ukc.api.platform.images.getImages({ baseUrl });
  assert.equal(res.status, 'success');
  assert.deepEqual(res.data?.images?.map((i) => i.tags), [[IMG]]);
  const byTag = await ukc.api.platform.images.getImages({ tag: IMG, baseUrl });
  assert.equal(byTag.data?.images?.length, 1);
});

test('services: create, list and get answer under service_groups; update sends triples', async () => {
  const group = await ukc.services.create({ name: 'sdk-web', services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }] });
  assert.equal(group.name, 'sdk-web');
  assert.deepEqual((await collect(ukc.services.list())).map((g) => g.name), ['sdk-web']);
  assert.equal((await ukc.services.get({ name: 'sdk-web' })).uuid, group.uuid);
  const changed = await ukc.services.update({ name: 'sdk-web' }, { hard_limit: 20 });
  assert.equal(changed.uuid, group.uuid);
  assert.equal((await ukc.services.get({ uuid: group.uuid! })).hard_limit, 20);
});

test('certificates: create, list, get by name, renew (PUT), delete', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-sdk-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2', '-subj', '/CN=shop.example.com', '-addext', 'subjectAltName=DNS:shop.example.com'], { stdio: 'ignore' });
    assert.deepEqual(await collect(ukc.certificates.list()), []);
    const cert = await ukc.certificates.create({ name: 'shop', common_name: 'shop.example.com', chain: readFileSync(join(dir, 'c.pem'), 'utf8'), pkey: readFileSync(join(dir, 'k.pem'), 'utf8') });
    assert.equal(cert.common_name, 'shop.example.com');
    assert.equal(cert.state, 'valid');
    assert.deepEqual((await collect(ukc.certificates.list())).map((c) => c.name), ['shop']);
    assert.equal((await ukc.certificates.get({ name: 'shop' })).uuid, cert.uuid);
    // Renewal: a new chain and key for the same certificate.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k2.pem'), '-out', join(dir, 'c2.pem'), '-days', '3', '-subj', '/CN=shop.example.com', '-addext', 'subjectAltName=DNS:shop.example.com'], { stdio: 'ignore' });
    const renewed = await ukc.certificates.update({ name: 'shop' }, { chain: readFileSync(join(dir, 'c2.pem'), 'utf8'), pkey: readFileSync(join(dir, 'k2.pem'), 'utf8') });
    assert.equal(renewed.uuid, cert.uuid);
    assert.notEqual(renewed.serial_number, cert.serial_number);
    await ukc.certificates.delete([{ name: 'shop' }]);
    assert.deepEqual(await collect(ukc.certificates.list()), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('users: the caller\'s quotas in the contract\'s shape', async () => {
  const [quota] = await ukc.users.quotas();
  assert.equal(quota?.used.instances, 3);
  assert.equal(quota?.used.service_groups, 1);
  assert.equal(quota?.hard.instances, 50);
  assert.equal(quota?.limits.max_vcpus, 64);
  const [byUuid] = await ukc.users.quotasByUuid(quota!.uuid);
  assert.equal(byUuid?.used.instances, 3);
});

test('an operation ukc does not offer answers EOPNOTSUPP in the envelope (not 404/405)', async () => {
  for (const call of [
    () => ukc.api.platform.instances.getCheckpointInstances({ baseUrl }),
    () => ukc.api.platform.autoscale.getAutoscaleConfigurations({ baseUrl }),
    () => ukc.instances.suspend([{ name: 'sdk-1' }]),
  ]) {
    await assert.rejects(call(), (e: unknown) => {
      assert.ok(e instanceof UnikraftCloudError, String(e));
      assert.equal(e.status, 501);
      assert.equal((e.errors as { error?: number }[] | undefined)?.[0]?.error, 95);
      assert.match(e.message, /not supported/);
      return true;
    });
  }
});

/** A request with a GET body (the older dialect; `fetch` cannot send one). */
function olderDialect(method: string, path: string, body: unknown): Promise<{ status: number; body: { data: Record<string, Record<string, unknown>[]> } }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(`${baseUrl}${path}`, { method, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), authorization: 'Bearer older' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as { data: Record<string, Record<string, unknown>[]> } }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

test('the older dialect still works: selectors in GET bodies, /v1/images/list', async () => {
  const got = await olderDialect('GET', '/v1/instances', [{ name: 'sdk-2' }]);
  assert.equal(got.status, 200);
  assert.deepEqual(got.body.data.instances?.map((i) => i.name), ['sdk-2']);
  const images = await olderDialect('GET', '/v1/images/list', [{ tag: IMG }]);
  assert.equal(images.status, 200);
  assert.equal(images.body.data.images?.length, 1);
});

test('every JSON answer above validates against the SDK schema of its operation (ajv)', () => {
  assert.ok(answers.length > 20, `${answers.length} answers recorded`);
  const failures: string[] = [];
  for (const a of answers) {
    const op = operationOf(a.method, a.url.pathname);
    if (op === undefined) {
      failures.push(`${a.method} ${a.url.pathname}: not an operation of the contract`);
      continue;
    }
    const validate = validatorFor(op.response);
    const where = `${op.op} (${a.status} ${a.method} ${a.url.pathname}${a.url.search})`;
    const { body, failedItems } = withoutFailedItems(a.body);
    if (!validate(body)) failures.push(`${where}: ${ajv.errorsText(validate.errors)}`);
    for (const item of failedItems) {
      if (typeof item.message !== 'string' || typeof item.error !== 'number') failures.push(`${where}: a failed item without message and errno: ${JSON.stringify(item)}`);
    }
  }
  assert.deepEqual(failures, []);
});
