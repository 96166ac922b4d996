// The node API in both dialects (reference/unikraft-cloud.md, section 0): query selectors and
// paging as the official SDK sends them, and the older GET bodies, in-process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeHarness, type Harness } from './harness.test-support.js';
import { settle } from './test-doubles.test-support.js';
import { Errno } from './index.js';

const IMG = 'alice/httpserver:latest';

async function withNode(fn: (h: Harness) => Promise<void>, gateway = false): Promise<void> {
  const h = await makeHarness(gateway ? { gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) } } : {});
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

const items = (b: { data: Record<string, Record<string, unknown>[]> }, key: string): Record<string, unknown>[] => b.data[key] ?? [];

async function fiveInstances(h: Harness): Promise<Record<string, unknown>[]> {
  const made: Record<string, unknown>[] = [];
  for (const name of ['a1', 'a2', 'a3', 'a4', 'a5']) {
    const r = await h.call('POST', '/v1/instances', { image: IMG, name, autostart: false, tags: name === 'a3' ? ['blue'] : [] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    made.push(items(r.body, 'instances')[0]!);
  }
  return made;
}

test('instances: query selectors select (name and uuid, repeated), not the first instance', () =>
  withNode(async (h) => {
    const made = await fiveInstances(h);
    const byName = await h.call('GET', '/v1/instances?name=a4&details=true');
    assert.deepEqual(items(byName.body, 'instances').map((i) => i.name), ['a4']);
    const byUuid = await h.call('GET', `/v1/instances?uuid=${String(made[2]!.uuid)}`);
    assert.deepEqual(items(byUuid.body, 'instances').map((i) => i.name), ['a3']);
    const both = await h.call('GET', `/v1/instances?uuid=${String(made[1]!.uuid)}&name=a5`);
    assert.deepEqual(items(both.body, 'instances').map((i) => i.name), ['a2', 'a5']);
    const missing = await h.call('GET', '/v1/instances?name=nope');
    assert.equal(missing.status, 404);
    assert.equal(missing.body.errors?.[0]?.error, Errno.ENOENT);
    const tagged = await h.call('GET', '/v1/instances?tags=blue');
    assert.deepEqual(items(tagged.body, 'instances').map((i) => i.name), ['a3']);
    // Both dialects at once: which one wins is not obvious, so neither does.
    const mixed = await h.call('GET', '/v1/instances?name=a1', [{ name: 'a2' }]);
    assert.equal(mixed.status, 400);
  }));

test('instances: paging by count and from yields each instance once; offset/limit and order too', () =>
  withNode(async (h) => {
    await fiveInstances(h);
    const seen: string[] = [];
    let from: string | undefined;
    for (let i = 0; i < 10; i++) {
      const r = await h.call('GET', `/v1/instances?count=2${from ? `&from=${from}` : ''}`);
      const page = items(r.body, 'instances');
      seen.push(...page.map((x) => String(x.name)));
      if (page.length < 2) break;
      from = String(page[page.length - 1]!.uuid);
    }
    assert.deepEqual(seen, ['a1', 'a2', 'a3', 'a4', 'a5']);
    const off = await h.call('GET', '/v1/instances?offset=3&limit=1');
    assert.deepEqual(items(off.body, 'instances').map((x) => x.name), ['a4']);
    const desc = await h.call('GET', '/v1/instances?order=desc&sortby=create_time&count=2&details=false');
    assert.deepEqual(items(desc.body, 'instances').map((x) => x.name), ['a5', 'a4']);
    assert.equal((await h.call('GET', '/v1/instances?sortby=name')).status, 400);
    assert.equal((await h.call('GET', '/v1/instances?count=0')).status, 400);
  }));

test('instances: delete, wait, log and metrics take query selectors; the older GET body still works', () =>
  withNode(async (h) => {
    await fiveInstances(h);
    const started = await h.call('PUT', '/v1/instances/start', [{ name: 'a1' }]);
    assert.equal(started.status, 200, JSON.stringify(started.body));
    await settle();
    const waited = await h.call('GET', '/v1/instances/wait?name=a1&state=running&timeout_s=1');
    assert.equal(waited.status, 200, JSON.stringify(waited.body));
    assert.equal(items(waited.body, 'instances')[0]?.state, 'running');
    const log = await h.call('GET', '/v1/instances/log?name=a1&offset=0&limit=5');
    assert.equal(Buffer.from(String(items(log.body, 'instances')[0]?.output), 'base64').toString(), 'hello');
    const metrics = await h.call('GET', '/v1/instances/metrics?name=a1');
    assert.equal(items(metrics.body, 'instances')[0]?.name, 'a1');
    const older = await h.call('GET', '/v1/instances', [{ name: 'a2' }]);
    assert.deepEqual(items(older.body, 'instances').map((i) => i.name), ['a2']);
    const del = await h.call('DELETE', '/v1/instances?name=a5&name=a4');
    assert.deepEqual(items(del.body, 'instances').map((i) => i.name), ['a5', 'a4']);
    const left = await h.call('GET', '/v1/instances?details=false');
    assert.deepEqual(items(left.body, 'instances').map((i) => i.name), ['a1', 'a2', 'a3']);
  }));

test('services and certificates: query selectors and paging on their lists', () =>
  withNode(async (h) => {
    for (const name of ['s1', 's2', 's3']) {
      const r = await h.call('POST', '/v1/services', { name, services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }], domains: [{ name }] });
      assert.equal(r.status, 200, JSON.stringify(r.body));
    }
    const one = await h.call('GET', '/v1/services?name=s2');
    assert.deepEqual(items(one.body, 'service_groups').map((g) => g.name), ['s2']);
    const page = await h.call('GET', '/v1/services?count=2&details=false');
    assert.deepEqual(items(page.body, 'service_groups').map((g) => g.name), ['s1', 's2']);
    const del = await h.call('DELETE', '/v1/services?name=s3');
    assert.deepEqual(items(del.body, 'service_groups').map((g) => g.name), ['s3']);
    const certs = await h.call('GET', '/v1/certificates?name=nope');
    assert.equal(certs.status, 404);
    const none = await h.call('GET', '/v1/certificates?count=5');
    assert.deepEqual(items(none.body, 'certificates'), []);
  }, true));

test('instances: PATCH takes {prop, op, value} triples (set, add, del; one answer per instance), the older fields form still works', () =>
  withNode(async (h) => {
    await fiveInstances(h);
    const r = await h.call('PATCH', '/v1/instances', [
      { name: 'a1', prop: 'memory_mb', op: 'set', value: 256 },
      { name: 'a1', prop: 'env', op: 'add', value: { LOG: 'debug' } },
      { name: 'a1', prop: 'tags', op: 'add', value: ['prod', 'prod'] },
      { name: 'a2', prop: 'args', op: 'set', value: '/bin/web' },
    ]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const [a1, a2] = items(r.body, 'instances');
    assert.equal(a1?.memory_mb, 256);
    assert.deepEqual(a1?.env, { PATH: '/usr/bin', MODE: 'prod', LOG: 'debug' });
    assert.deepEqual(a1?.tags, ['prod']);
    assert.deepEqual(a2?.args, ['/bin/web']);
    const del = await h.call('PATCH', '/v1/instances/a1', [
      { prop: 'env', op: 'del', value: 'MODE' },
      { prop: 'tags', op: 'del' },
    ]);
    assert.deepEqual(items(del.body, 'instances')[0]?.env, { PATH: '/usr/bin', LOG: 'debug' });
    assert.deepEqual(items(del.body, 'instances')[0]?.tags, []);
    const single = await h.call('PATCH', '/v1/instances/a3', { prop: 'vcpus', op: 'set', value: 2 });
    assert.equal(items(single.body, 'instances')[0]?.vcpus, 2);
    // A contract property ukc cannot change is EOPNOTSUPP; a bad value is EINVAL; an unknown property too.
    const unsupported = await h.call('PATCH', '/v1/instances', [{ name: 'a1', prop: 'hostname', op: 'set', value: 'x' }]);
    assert.equal(unsupported.status, 501);
    assert.equal(unsupported.body.errors?.[0]?.error, Errno.EOPNOTSUPP);
    const badValue = await h.call('PATCH', '/v1/instances', [{ name: 'a1', prop: 'memory_mb', op: 'set', value: 'lots' }]);
    assert.equal(badValue.status, 400);
    assert.equal((await h.call('PATCH', '/v1/instances', [{ name: 'a1', prop: 'owner', op: 'set', value: 'x' }])).status, 400);
    assert.equal((await h.call('PATCH', '/v1/instances', [{ name: 'a1', prop: 'vcpus', op: 'add', value: 1 }])).status, 400);
    const older = await h.call('PATCH', '/v1/instances', [{ name: 'a4', memory_mb: 512 }]);
    assert.equal(items(older.body, 'instances')[0]?.memory_mb, 512);
  }));

test('instances: answers carry type micro; image.credentials is accepted as the contract\'s string', () =>
  withNode(async (h) => {
    const r = await h.call('POST', '/v1/instances', { image: { url: IMG, credentials: 'alice:secret' }, autostart: false });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(items(r.body, 'instances')[0]?.type, 'micro');
    assert.deepEqual(h.resolver.requests.at(-1)?.credentials, { username: 'alice', password: 'secret' });
    await h.call('POST', '/v1/instances', { image: { url: IMG, credentials: Buffer.from('bob:pw').toString('base64') }, autostart: false });
    assert.deepEqual(h.resolver.requests.at(-1)?.credentials, { username: 'bob', password: 'pw' });
    await h.call('POST', '/v1/instances', { image: { url: IMG, credentials: 'ukc_abc_def' }, autostart: false });
    assert.deepEqual(h.resolver.requests.at(-1)?.credentials, { username: 'token', password: 'ukc_abc_def' });
    const older = await h.call('POST', '/v1/instances', { image: { url: IMG, credentials: { username: 'u', password: 'p' } }, autostart: false });
    assert.equal(older.status, 200);
    const headers = await h.call('POST', '/v1/instances', { image: { url: IMG, headers: { 'x-a': 'b' } }, autostart: false });
    assert.equal(headers.status, 501);
    const listed = await h.call('GET', '/v1/instances');
    assert.ok(items(listed.body, 'instances').every((i) => i.type === 'micro'));
  }));

test('services: PATCH takes triples; answers carry the limits in effect', () =>
  withNode(async (h) => {
    const made = await h.call('POST', '/v1/services', { name: 'web', services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }] });
    const g = items(made.body, 'service_groups')[0]!;
    assert.equal(g.hard_limit, 10_000);
    assert.equal(g.soft_limit, 10_000);
    const r = await h.call('PATCH', '/v1/services', [
      { name: 'web', prop: 'hard_limit', op: 'set', value: 10 },
      { name: 'web', prop: 'soft_limit', op: 'set', value: 5 },
      { name: 'web', prop: 'services', op: 'add', value: [{ port: 80, destination_port: 443, handlers: ['http', 'redirect'] }] },
    ]);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const after = items(r.body, 'service_groups')[0]!;
    assert.equal(after.hard_limit, 10);
    assert.equal(after.soft_limit, 5);
    assert.equal((after.services as unknown[]).length, 2);
    const single = await h.call('PATCH', `/v1/services/${String(g.uuid)}`, { prop: 'soft_limit', op: 'set', value: 20 });
    assert.equal(single.status, 400);
    assert.match(String(single.body.message), /soft_limit must not exceed hard_limit/);
    const autokill = await h.call('PATCH', '/v1/services/web', { prop: 'autokill', op: 'set', value: {} });
    assert.equal(autokill.status, 501);
    const createAutokill = await h.call('POST', '/v1/services', { name: 'idle', services: [{ port: 8443, handlers: ['tls'] }], autokill: { time_ms: 1000 } });
    assert.equal(createAutokill.status, 501);
    assert.equal(createAutokill.body.errors?.[0]?.error, Errno.EOPNOTSUPP);
  }, true));

test('contract request fields: wait_timeout_ms on create and start, dont_retain on delete; features a node lacks are EOPNOTSUPP, not unknown fields', () =>
  withNode(async (h) => {
    const made = await h.call('POST', '/v1/instances', { image: IMG, name: 'w1', wait_timeout_ms: 1000 });
    assert.equal(made.status, 200, JSON.stringify(made.body));
    for (const field of [{ hostname: 'x' }, { autokill: { time_ms: 1 } }, { annotations: { a: 'b' } }, { nameserver: '1.1.1.1' }]) {
      const r = await h.call('POST', '/v1/instances', { image: IMG, autostart: false, ...field });
      assert.equal(r.status, 501, JSON.stringify(field));
      assert.equal(r.body.errors?.[0]?.error, Errno.EOPNOTSUPP);
    }
    assert.equal((await h.call('POST', '/v1/instances', { image: IMG, wait_timeout_ms: 5, timeout_s: 1 })).status, 400);
    await h.call('POST', '/v1/instances', { image: IMG, name: 'w2', autostart: false });
    const started = h.call('PUT', '/v1/instances/start', [{ name: 'w2', wait_timeout_ms: 5000 }]);
    await settle();
    const s = await started;
    assert.equal(s.status, 200, JSON.stringify(s.body));
    assert.equal(items(s.body, 'instances')[0]?.state, 'running');
    const stop = await h.call('PUT', '/v1/instances/stop', [{ name: 'w2', dump: true }]);
    assert.equal(stop.status, 501);
    const log = await h.call('GET', '/v1/instances/w2/log');
    assert.equal(items(log.body, 'instances')[0]?.state, 'running');
    const metrics = await h.call('GET', '/v1/instances/w2/metrics');
    assert.equal(items(metrics.body, 'instances')[0]?.cpu_time_ms, 1);
    assert.deepEqual([0, 0, 0], ['nconns', 'nreqs', 'nqueued'].map((k) => items(metrics.body, 'instances')[0]?.[k]));
    const del = await h.call('DELETE', '/v1/instances', [{ name: 'w2', dont_retain: true }]);
    assert.equal(del.status, 200, JSON.stringify(del.body));
  }));

test('certificates: PUT renews chain and key in place; a renewal that drops a host name is refused', () =>
  withNode(async (h) => {
    const dir = mkdtempSync(join(tmpdir(), 'ukc-renew-'));
    const pair = (tag: string, sans: string): { chain: string; pkey: string } => {
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${tag}.key`), '-out', join(dir, `${tag}.crt`), '-days', '2', '-subj', '/CN=shop.example.com', '-addext', `subjectAltName=${sans}`], { stdio: 'ignore' });
      return { chain: readFileSync(join(dir, `${tag}.crt`), 'utf8'), pkey: readFileSync(join(dir, `${tag}.key`), 'utf8') };
    };
    try {
      const made = await h.call('POST', '/v1/certificates', { name: 'shop', ...pair('a', 'DNS:shop.example.com,DNS:www.example.com') });
      const first = items(made.body, 'certificates')[0]!;
      const renewed = await h.call('PUT', '/v1/certificates', [{ name: 'shop', ...pair('b', 'DNS:shop.example.com,DNS:www.example.com,DNS:api.example.com') }]);
      assert.equal(renewed.status, 200, JSON.stringify(renewed.body));
      const second = items(renewed.body, 'certificates')[0]!;
      assert.equal(second.uuid, first.uuid);
      assert.notEqual(second.serial_number, first.serial_number);
      const narrower = await h.call('PUT', `/v1/certificates/${String(first.uuid)}`, pair('c', 'DNS:shop.example.com'));
      assert.equal(narrower.status, 400);
      assert.match(String(narrower.body.message), /does not cover www\.example\.com/);
      const mismatched = await h.call('PUT', '/v1/certificates/shop', { chain: pair('d', 'DNS:shop.example.com,DNS:www.example.com,DNS:api.example.com').chain, pkey: pair('e', 'DNS:x.example.com').pkey });
      assert.equal(mismatched.status, 400);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, true));
