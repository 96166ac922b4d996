// /v1/services and /v1/certificates through the node API in-process (test doubles for the runtime).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeHarness, type Harness } from '../harness.test-support.js';
import { settle } from '../test-doubles.test-support.js';
import { Errno, StopReasons } from '../index.js';

const IMG = 'alice/httpserver:latest';

async function withGatewayNode(fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await makeHarness({ gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) } });
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

const list = (b: { data: Record<string, Record<string, unknown>[]> }, key: string): Record<string, unknown>[] => b.data[key] ?? [];

test('services: create with a generated name and FQDN, get, list, patch, delete', () =>
  withGatewayNode(async (h) => {
    const created = await h.call('POST', '/v1/services', { services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }] });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const [g] = list(created.body, 'service_groups');
    assert.match(String(g?.name), /^[a-z]+-[a-z]+-[a-z0-9]{8}$/);
    assert.deepEqual(g?.domains, [{ fqdn: `${String(g?.name)}.local.localhost` }]);
    assert.equal(g?.persistent, true);
    assert.deepEqual(g?.services, [{ port: 443, destination_port: 8080, handlers: ['tls', 'http'] }]);
    assert.deepEqual(h.api.gateway?.ports(), [443]);

    const byName = await h.call('GET', `/v1/services/${String(g?.name)}`);
    assert.equal(list(byName.body, 'service_groups')[0]?.uuid, g?.uuid);
    const all = await h.call('GET', '/v1/services?details=false');
    assert.deepEqual(list(all.body, 'service_groups'), [{ status: 'success', uuid: g?.uuid, name: g?.name }]);

    const patched = await h.call('PATCH', `/v1/services/${String(g?.uuid)}`, {
      services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }, { port: 80, destination_port: 443, handlers: ['http', 'redirect'] }],
      hard_limit: 10,
      domains: [{ name: 'shop' }],
    });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    assert.deepEqual(list(patched.body, 'service_groups')[0]?.domains, [{ fqdn: 'shop.local.localhost' }]);
    assert.equal(list(patched.body, 'service_groups')[0]?.hard_limit, 10);
    assert.deepEqual(h.api.gateway?.ports(), [80, 443]);

    const badPatch = await h.call('PATCH', `/v1/services/${String(g?.uuid)}`, { soft_limit: 20 });
    assert.equal(badPatch.status, 400);
    assert.match(String(badPatch.body.message), /soft_limit must not exceed hard_limit/);

    const named = await h.call('POST', '/v1/services', { name: 'web', services: [{ port: 8443, handlers: ['tls'] }], domains: [{ name: 'shop' }] });
    assert.equal(named.status, 409);
    assert.match(String(named.body.message), /domain shop\.local\.localhost is already used/);

    const del = await h.call('DELETE', '/v1/services', [{ uuid: g?.uuid }, { name: 'missing' }]);
    assert.equal(del.body.status, 'partial_success');
    assert.equal((await h.call('GET', `/v1/services/${String(g?.uuid)}`)).status, 404);
    assert.deepEqual(h.api.gateway?.ports(), []);
  }));

test('services: every invalid port/handler combination is refused with a clear message and changes nothing', () =>
  withGatewayNode(async (h) => {
    const cases: [unknown, RegExp][] = [
      [[{ port: 443, handlers: ['http'] }], /port 443 must have http and tls/],
      [[{ port: 443, handlers: ['tls'] }], /port 443 must have http and tls/],
      [[{ port: 80, handlers: ['tls', 'http'] }], /port 80 must have http and not tls/],
      [[{ port: 80, handlers: [] }], /port 80 must have http and not tls/],
      [[{ port: 8080, handlers: ['http'] }], /port 8080 must have tls and not http/],
      [[{ port: 8080, handlers: ['http', 'tls'] }], /port 8080 must have tls and not http/],
      [[{ port: 8080 }], /port 8080 must have tls/],
      [[{ port: 81, destination_port: 443, handlers: ['http', 'redirect'] }], /redirect is only allowed on port 80/],
      [[{ port: 80, destination_port: 8080, handlers: ['http', 'redirect'] }], /redirect must point to 443/],
      [[{ port: 80, destination_port: 443, handlers: ['redirect'] }], /redirect needs http/],
      [[{ port: 443, handlers: ['http', 'tls'] }, { port: 443, handlers: ['http', 'tls'] }], /listed twice/],
      [[], /at least 1 items/],
      [[{ port: 0, handlers: ['tls'] }], /must be >= 1/],
      [[{ port: 443, handlers: ['http', 'gzip'] }], /must be one of tls, http, redirect/],
    ];
    for (const [services, why] of cases) {
      const r = await h.call('POST', '/v1/services', { services });
      assert.equal(r.status, 400, JSON.stringify(services));
      assert.equal(r.body.errors?.[0]?.error, Errno.EINVAL);
      assert.match(String(r.body.message), why);
      // Also inline with an instance.
      const i = await h.call('POST', '/v1/instances', { image: IMG, service_group: { services } });
      assert.equal(i.status, 400, JSON.stringify(services));
    }
    assert.deepEqual(list((await h.call('GET', '/v1/services')).body, 'service_groups'), []);
    assert.deepEqual(list((await h.call('GET', '/v1/instances')).body, 'instances'), []);
  }));

test('instances: an inline service group is ephemeral; answers carry service_group, private_fqdn, domains[].fqdn', () =>
  withGatewayNode(async (h) => {
    const r = await h.call('POST', '/v1/instances', {
      image: IMG,
      replicas: 1,
      service_group: { services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }] },
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const insts = list(r.body, 'instances');
    assert.equal(insts.length, 2);
    const sg = insts[0]?.service_group as { uuid: string; name: string; domains: { fqdn: string }[] };
    assert.match(sg.name, /^[a-z]+-[a-z]+-[a-z0-9]{8}$/);
    assert.deepEqual(sg.domains, [{ fqdn: `${sg.name}.local.localhost` }]);
    assert.deepEqual(insts[1]?.service_group, sg);
    assert.equal(insts[0]?.private_fqdn, `${String(insts[0]?.name)}.internal`);
    const g = list((await h.call('GET', `/v1/services/${sg.uuid}`)).body, 'service_groups')[0];
    assert.equal(g?.persistent, false);
    assert.equal((g?.instances as unknown[]).length, 2);
    // A group with instances cannot be deleted.
    const busy = await h.call('DELETE', `/v1/services/${sg.uuid}`);
    assert.equal(busy.status, 409);
    assert.equal(busy.body.errors?.[0]?.error, Errno.EBUSY);
    // Joining an existing group by name.
    const joined = await h.call('POST', '/v1/instances', { image: IMG, service_group: { name: sg.name }, autostart: false });
    assert.equal(list(joined.body, 'instances')[0]?.service_group && (list(joined.body, 'instances')[0]?.service_group as { uuid: string }).uuid, sg.uuid);
    // The ephemeral group goes with its last instance.
    await h.call('DELETE', '/v1/instances', [...insts, ...list(joined.body, 'instances')].map((i) => ({ uuid: i.uuid })));
    await settle();
    assert.equal((await h.call('GET', `/v1/services/${sg.uuid}`)).status, 404);
  }));

test('scale_to_zero: label defaults; standby is a platform stop (7); a start wakes it; a user stop of standby is stopped', () =>
  withGatewayNode(async (h) => {
    h.resolver.add('alice/stz:latest', {
      digestRef: `alice/stz@sha256:${'b'.repeat(64)}`,
      config: {
        Cmd: ['/app'],
        Labels: {
          'cloud.unikraft.v1.instances/scale_to_zero.policy': 'on',
          'cloud.unikraft.v1.instances/scale_to_zero.cooldown_time_ms': '60000',
        },
      },
    });
    const r = await h.call('POST', '/v1/instances', { image: 'alice/stz:latest', service_group: { services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }] } });
    const [inst] = list(r.body, 'instances');
    assert.deepEqual(inst?.scale_to_zero, { policy: 'on', stateful: false, cooldown_time_ms: 60000 });
    const explicit = await h.call('POST', '/v1/instances', {
      image: 'alice/stz:latest',
      autostart: false,
      scale_to_zero: { policy: 'idle', cooldown_time_ms: 500 },
      service_group: { name: (inst?.service_group as { name: string }).name },
    });
    assert.deepEqual(list(explicit.body, 'instances')[0]?.scale_to_zero, { policy: 'idle', stateful: false, cooldown_time_ms: 500 });
    await settle();
    const uuid = String(inst?.uuid);
    assert.equal(list((await h.call('GET', `/v1/instances/${uuid}`)).body, 'instances')[0]?.state, 'running');
    // The gateway's idle timer calls this; here it is driven directly.
    const backendStandby = (h.api as unknown as { gateway: { options: { backend: { standby(u: string): Promise<void> } } } }).gateway.options.backend;
    await backendStandby.standby(uuid);
    const after = list((await h.call('GET', `/v1/instances/${uuid}`)).body, 'instances')[0];
    assert.equal(after?.state, 'standby');
    assert.equal(after?.stop_reason, StopReasons.platformStop);
    assert.equal(h.driver.runs.filter((x) => x.spec.uuid === uuid && x.alive).length, 0);
    await h.call('PUT', `/v1/instances/${uuid}/start`);
    await settle();
    assert.equal(list((await h.call('GET', `/v1/instances/${uuid}`)).body, 'instances')[0]?.state, 'running');
    await backendStandby.standby(uuid);
    await h.call('PUT', `/v1/instances/${uuid}/stop`);
    assert.equal(list((await h.call('GET', `/v1/instances/${uuid}`)).body, 'instances')[0]?.state, 'stopped');
  }));

test('certificates: upload checks key and names; a domain may use it; in-use certificates cannot be deleted', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-cert-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem'), '-days', '2', '-subj', '/CN=shop.example.com', '-addext', 'subjectAltName=DNS:shop.example.com,DNS:*.shop.example.com'], { stdio: 'ignore' });
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'other.pem')], { stdio: 'ignore' });
    const chain = readFileSync(join(dir, 'c.pem'), 'utf8');
    const pkey = readFileSync(join(dir, 'k.pem'), 'utf8');
    await withGatewayNode(async (h) => {
      const wrongKey = await h.call('POST', '/v1/certificates', { name: 'shop', chain, pkey: readFileSync(join(dir, 'other.pem'), 'utf8') });
      assert.equal(wrongKey.status, 400);
      assert.match(String(wrongKey.body.message), /does not belong/);
      const notPem = await h.call('POST', '/v1/certificates', { name: 'shop', chain: 'hello', pkey });
      assert.match(String(notPem.body.message), /no PEM certificate/);
      const wrongCn = await h.call('POST', '/v1/certificates', { name: 'shop', chain, pkey, cn: 'evil.example.org' });
      assert.match(String(wrongCn.body.message), /does not cover evil\.example\.org/);
      const ok = await h.call('POST', '/v1/certificates', { name: 'shop', chain, pkey });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const c = list(ok.body, 'certificates')[0];
      assert.deepEqual(c?.hostnames, ['shop.example.com', '*.shop.example.com']);
      assert.equal(c?.state, 'valid');
      assert.equal(c?.pkey, undefined);
      assert.equal(statSync(join(h.dir, 'certificates.db')).mode & 0o777, 0o600);
      assert.equal(statSync(join(h.dir, 'tls', 'wildcard.key')).mode & 0o777, 0o600);
      const g = await h.call('POST', '/v1/services', { services: [{ port: 443, handlers: ['http', 'tls'] }], domains: [{ name: 'api.shop.example.com', certificate: { name: 'shop' } }] });
      assert.equal(g.status, 200, JSON.stringify(g.body));
      const mismatch = await h.call('POST', '/v1/services', { services: [{ port: 443, handlers: ['http', 'tls'] }], domains: [{ name: 'other.example.com', certificate: { name: 'shop' } }] });
      assert.match(String(mismatch.body.message), /does not cover other\.example\.com/);
      const del = await h.call('DELETE', '/v1/certificates/shop');
      assert.equal(del.status, 409);
      await h.call('DELETE', `/v1/services/${String(list(g.body, 'service_groups')[0]?.uuid)}`);
      assert.equal((await h.call('DELETE', '/v1/certificates/shop')).status, 200);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
