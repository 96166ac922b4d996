import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeHarness, type Harness } from './harness.test-support.js';
import { settle } from './test-doubles.test-support.js';
import { accountPrincipal, Policy, type AccountPrincipal } from '../auth/index.js';
import { Errno } from './index.js';

async function withNode(fn: (h: Harness) => Promise<void>, extra = {}): Promise<void> {
  const h = await makeHarness(extra);
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

const IMG = 'alice/httpserver:latest';
const instances = (b: { data: Record<string, Record<string, unknown>[]> }) => b.data.instances ?? [];

test('create: defaults, digest pinning, env merge, generated name, autostart', () =>
  withNode(async (h) => {
    const r = await h.call('POST', '/v1/instances', { image: IMG, env: { MODE: 'dev', EXTRA: '1' } });
    assert.equal(r.status, 200);
    assert.equal(r.body.status, 'success');
    const [inst] = instances(r.body);
    assert.ok(inst);
    assert.match(String(inst.name), /^httpserver-[a-z0-9]{5}$/);
    assert.equal(inst.image, `alice/httpserver@sha256:${'a'.repeat(64)}`);
    assert.equal(inst.memory_mb, 128);
    assert.equal(inst.vcpus, 1);
    assert.deepEqual(inst.args, ['/usr/bin/python3', '/src/server.py']);
    assert.deepEqual(inst.env, { PATH: '/usr/bin', MODE: 'dev', EXTRA: '1' });
    assert.equal(inst.private_fqdn, `${String(inst.name)}.internal`);
    assert.equal(inst.restart_policy, 'never');
    assert.equal(inst.start_count, 1);
    await settle();
    const got = await h.call('GET', `/v1/instances/${String(inst.uuid)}`);
    const [now] = instances(got.body);
    assert.equal(now?.state, 'running');
    assert.equal(now?.boot_time_us, 1500);
    assert.equal(now?.private_ip, '10.0.0.2');
    assert.equal(typeof now?.created_at, 'string');
  }));

test('create: replicas make N+1 instances; with a name they are suffixed -1..-N', () =>
  withNode(async (h) => {
    const gen = await h.call('POST', '/v1/instances', { image: IMG, replicas: 2, autostart: false });
    const names = instances(gen.body).map((i) => String(i.name));
    assert.equal(names.length, 3);
    assert.equal(new Set(names).size, 3);
    for (const n of names) assert.match(n, /^httpserver-[a-z0-9]{5}$/);
    const named = await h.call('POST', '/v1/instances', { image: IMG, name: 'web', replicas: 2, autostart: false, args: ['x'] });
    assert.deepEqual(instances(named.body).map((i) => i.name), ['web', 'web-1', 'web-2']);
    assert.deepEqual(instances(named.body)[0]?.args, ['x']);
    assert.equal(instances(named.body)[0]?.state, 'stopped');
    const again = await h.call('POST', '/v1/instances', { image: IMG, name: 'web-2', autostart: false });
    assert.equal(again.status, 409);
    assert.equal(again.body.errors?.[0]?.error, Errno.EEXIST);
    // A colliding replica set is all-or-nothing.
    const clash = await h.call('POST', '/v1/instances', { image: IMG, name: 'web', replicas: 1, autostart: false });
    assert.equal(clash.body.errors?.[0]?.error, Errno.EEXIST);
    assert.equal(instances((await h.call('GET', '/v1/instances')).body).length, 6);
  }));

test('create: invalid requests change nothing and say why', () =>
  withNode(async (h) => {
    const cases: [unknown, number, RegExp][] = [
      [{ image: IMG, bogus: 1 }, Errno.EINVAL, /bogus: unknown field/],
      [{ image: IMG, memory_mb: '128' }, Errno.EINVAL, /memory_mb: expected integer/],
      [{ image: IMG, name: 'Bad_Name' }, Errno.EINVAL, /name: must be a DNS label/],
      [{}, Errno.EINVAL, /image: required/],
      [{ image: { url: IMG, pull_policy: 'sometimes' } }, Errno.EINVAL, /pull_policy/],
      [{ image: IMG, features: ['delete-on-stop'], restart_policy: 'always' }, Errno.EINVAL, /restart_policy never/],
      [{ image: IMG, scale_to_zero: { policy: 'on' } }, Errno.EINVAL, /needs a service_group/],
      [{ image: IMG, autostart: false, timeout_s: 5 }, Errno.EINVAL, /timeout_s needs autostart/],
      [{ image: IMG, type: 'full' }, Errno.EOPNOTSUPP, /not supported on this node/],
      [{ image: IMG, service_group: { services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }] } }, Errno.EOPNOTSUPP, /service groups/],
      [{ image: IMG, service_group: { services: [{ port: 80, handlers: ['tls'] }] } }, Errno.EINVAL, /port 80 must have http/],
      [{ image: IMG, volumes: [{ name: 'v', at: '/data' }] }, Errno.EOPNOTSUPP, /volumes/],
      [{ image: IMG, volumes: [{ name: 'v', at: 'data' }] }, Errno.EINVAL, /absolute path/],
      [{ image: 'nobody/nothing:1' }, Errno.ENOENT, /not found/],
      [[{ image: IMG }], Errno.EINVAL, /expected object, got array/],
    ];
    for (const [body, errno, msg] of cases) {
      const r = await h.call('POST', '/v1/instances', body);
      assert.equal(r.body.status, 'error', JSON.stringify(body));
      assert.equal(r.body.errors?.[0]?.error, errno, JSON.stringify(body));
      assert.match(String(r.body.message), msg);
    }
    assert.equal(instances((await h.call('GET', '/v1/instances')).body).length, 0);
    const broken = await h.call('POST', '/v1/instances', '{"image": ');
    assert.equal(broken.status, 400);
  }));

test('create with replicas over node capacity is ENOSPC', () =>
  withNode(
    async (h) => {
      const r = await h.call('POST', '/v1/instances', { image: IMG, replicas: 3, autostart: false });
      assert.equal(r.status, 507);
      assert.equal(r.body.errors?.[0]?.error, Errno.ENOSPC);
    },
    { limits: { maxInstances: 3 } },
  ));

// Security case 7: unbounded sizes — REST bodies are capped.
test('unbounded sizes (case 7): body over the cap is rejected with 413', () =>
  withNode(
    async (h) => {
      const r = await h.call('POST', '/v1/instances', { image: IMG, args: ['x'.repeat(600)] });
      assert.equal(r.status, 413);
      assert.equal(r.body.errors?.[0]?.error, Errno.EFBIG);
    },
    { limits: { maxBodyBytes: 512 } },
  ));

// Security case 21: args and env reach the launcher over a pipe as C strings; NUL cannot, so create refuses it.
test('row 21: NUL bytes in args or env are refused at create (and patch) with EINVAL 400, nothing created', () =>
  withNode(async (h) => {
    for (const body of [{ image: IMG, args: ['a\0b'] }, { image: IMG, env: { SECRET: 'x\0y' } }]) {
      const r = await h.call('POST', '/v1/instances', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.errors?.[0]?.error, Errno.EINVAL);
      assert.match(JSON.stringify(r.body), /must not contain NUL bytes/);
    }
    const created = instances((await h.call('POST', '/v1/instances', { image: IMG, name: 'n', autostart: false })).body);
    assert.equal(created.length, 1);
    const p = await h.call('PATCH', '/v1/instances/n', { env: { A: '\0' } });
    assert.equal(p.status, 400, JSON.stringify(p.body));
    const list = await h.call('GET', '/v1/instances?details=false');
    assert.equal(list.body.data.instances.length, 1);
  }));

test('list: details flag, batch filter with partial_success, single by uuid and by name', () =>
  withNode(async (h) => {
    const created = instances((await h.call('POST', '/v1/instances', { image: IMG, name: 'a', replicas: 1, autostart: false })).body);
    const brief = await h.call('GET', '/v1/instances?details=false');
    assert.deepEqual(brief.body.data.instances, created.map((i) => ({ status: 'success', uuid: i.uuid, name: i.name })));
    const filtered = await h.call('GET', '/v1/instances', [{ name: 'a-1' }, { uuid: '00000000-0000-4000-8000-000000000000' }]);
    assert.equal(filtered.body.status, 'partial_success');
    assert.equal(instances(filtered.body)[0]?.name, 'a-1');
    assert.deepEqual(instances(filtered.body)[1], { status: 'error', uuid: '00000000-0000-4000-8000-000000000000', message: 'instance not found', error: Errno.ENOENT });
    assert.equal(filtered.body.errors?.[0]?.status, 404);
    const byName = await h.call('GET', '/v1/instances/a');
    assert.equal(instances(byName.body)[0]?.uuid, created[0]?.uuid);
    const missing = await h.call('GET', '/v1/instances/nope');
    assert.equal(missing.status, 404);
    assert.equal((await h.call('GET', '/v1/instances?details=maybe')).status, 400);
    const both = await h.call('GET', '/v1/instances', [{ name: 'a', uuid: String(created[0]?.uuid) }]);
    assert.equal(both.status, 400);
  }));

test('start/stop: both forms, no-ops, stop reason 15, wait and timeouts', () =>
  withNode(async (h) => {
    const [a, b] = instances((await h.call('POST', '/v1/instances', { image: IMG, name: 'a', replicas: 1, autostart: false })).body);
    const started = await h.call('PUT', '/v1/instances/start', [{ name: 'a' }, { uuid: String(b?.uuid) }]);
    assert.equal(started.body.status, 'success');
    assert.deepEqual(instances(started.body).map((i) => i.previous_state), ['stopped', 'stopped']);
    const waited = await h.call('GET', `/v1/instances/${String(a?.uuid)}/wait`, { state: 'running', timeout_ms: 1000 });
    assert.equal(instances(waited.body)[0]?.state, 'running');
    const again = await h.call('PUT', `/v1/instances/${String(a?.uuid)}/start`);
    assert.equal(instances(again.body)[0]?.previous_state, 'running');
    assert.equal(h.driver.runs.length, 2, 'start on a running instance is a no-op');
    const stopped = await h.call('PUT', `/v1/instances/a/stop`, {});
    assert.equal(instances(stopped.body)[0]?.state, 'stopped');
    const rec = instances((await h.call('GET', '/v1/instances/a')).body)[0];
    assert.equal(rec?.stop_reason, 15);
    assert.equal(rec?.exit_code, 0);
    const noop = await h.call('PUT', '/v1/instances/stop', [{ name: 'a' }]);
    assert.equal(instances(noop.body)[0]?.previous_state, 'stopped');
    // Waiting for a state that does not come ends with ETIMEDOUT.
    const pending = h.call('GET', '/v1/instances/wait', [{ name: 'a', state: 'running', timeout_ms: 500 }]);
    await settle();
    await h.clock.advance(500);
    const timedOut = await pending;
    assert.equal(timedOut.body.status, 'error');
    assert.equal(timedOut.body.errors?.[0]?.error, Errno.ETIMEDOUT);
    const badState = await h.call('GET', '/v1/instances/a/wait', { state: 'sleeping' });
    assert.equal(badState.status, 400);
  }));

test('stop with force, and a stop the app ignores, are forced stops (28)', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'f', replicas: 1 });
    await settle();
    await h.call('PUT', '/v1/instances/f/stop', { force: true });
    assert.equal(instances((await h.call('GET', '/v1/instances/f')).body)[0]?.stop_reason, 28);
    h.driver.ignoreStop.add('f-1');
    const stopping = h.call('PUT', '/v1/instances/f-1/stop', { drain_timeout_ms: 100 });
    await settle();
    assert.equal(instances((await h.call('GET', '/v1/instances/f-1')).body)[0]?.state, 'stopping');
    await h.clock.advance(100 + 10_000);
    await stopping;
    const rec = instances((await h.call('GET', '/v1/instances/f-1')).body)[0];
    assert.equal(rec?.state, 'stopped');
    assert.equal(rec?.stop_reason, 28);
  }));

test('delete: stops running instances first; batch with a missing one is partial_success', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'd', replicas: 1 });
    await settle();
    const del = await h.call('DELETE', '/v1/instances', [{ name: 'd' }, { name: 'ghost' }]);
    assert.equal(del.body.status, 'partial_success');
    assert.equal(instances(del.body)[0]?.previous_state, 'running');
    assert.equal(h.driver.current('d'), undefined, 'the run was stopped');
    const single = await h.call('DELETE', '/v1/instances/d-1');
    assert.equal(single.body.status, 'success');
    assert.equal(instances((await h.call('GET', '/v1/instances')).body).length, 0);
  }));

test('patch: tags any time, resources only when stopped; rules re-checked', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'p' });
    await settle();
    const tags = await h.call('PATCH', '/v1/instances/p', { tags: ['blue'] });
    assert.deepEqual(instances(tags.body)[0]?.tags, ['blue']);
    const busy = await h.call('PATCH', '/v1/instances', [{ name: 'p', memory_mb: 256 }]);
    assert.equal(busy.body.errors?.[0]?.error, Errno.EBUSY);
    await h.call('PUT', '/v1/instances/p/stop');
    const ok = await h.call('PATCH', '/v1/instances/p', { memory_mb: 256, vcpus: 2 });
    assert.equal(instances(ok.body)[0]?.memory_mb, 256);
    const conflict = await h.call('PATCH', '/v1/instances/p', { restart_policy: 'always', features: ['delete-on-stop'] });
    assert.equal(conflict.body.errors?.[0]?.error, Errno.EINVAL);
    const unknown = await h.call('PATCH', '/v1/instances/p', { name: 'q' });
    assert.equal(unknown.status, 400);
  }));

test('log and metrics endpoints, both forms', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'l' });
    await settle();
    const log = await h.call('GET', '/v1/instances/l/log', { offset: 0, limit: 100 });
    const item = instances(log.body)[0];
    assert.equal(Buffer.from(String(item?.output), 'base64').toString(), 'hello from l\n');
    assert.deepEqual(item?.range, { start: 0, end: 13 });
    const tail = await h.call('GET', '/v1/instances/log', [{ name: 'l', offset: -6, limit: 3 }]);
    assert.equal(Buffer.from(String(instances(tail.body)[0]?.output), 'base64').toString(), 'rom');
    const metrics = await h.call('GET', '/v1/instances/metrics', [{ name: 'l' }]);
    const m = instances(metrics.body)[0];
    assert.equal(m?.rss_bytes, 409600);
    assert.equal(m?.state, 'running');
    assert.equal(m?.start_count, 1);
    const single = await h.call('GET', '/v1/instances/l/metrics');
    assert.equal(single.body.status, 'success');
    const badLimit = await h.call('GET', '/v1/instances/l/log', { limit: -1 });
    assert.equal(badLimit.status, 400);
  }));

test('healthz and unknown endpoints', () =>
  withNode(async (h) => {
    const ok = await h.call('GET', '/v1/healthz');
    assert.equal(ok.status, 200);
    assert.equal(ok.body.status, 'success');
    const nope = await h.call('GET', '/v1/no-such-thing');
    assert.equal(nope.status, 404);
    // An operation of the contract a node does not offer is not an unknown endpoint.
    const volumes = await h.call('GET', '/v1/volumes');
    assert.equal(volumes.status, 501);
    assert.equal(volumes.body.errors?.[0]?.error, Errno.EOPNOTSUPP);
    const wrong = await h.call('POST', '/v1/instances/start');
    assert.equal(wrong.status, 405);
  }));

// Security case 14: another tenant's instances look exactly like missing ones.
test('tenant isolation: user B gets ENOENT for everything of user A', () => {
  const tokens: Record<string, AccountPrincipal> = { a: accountPrincipal('alice'), b: accountPrincipal('bob') };
  return withNode(
    async (h) => {
      const asA = { authorization: 'Bearer a' };
      const asB = { authorization: 'Bearer b' };
      const created = instances((await h.call('POST', '/v1/instances', { image: IMG, name: 'secret' }, asA)).body)[0];
      await settle();
      const uuid = String(created?.uuid);
      const ghost = '00000000-0000-4000-8000-000000000000';
      for (const [method, path] of [
        ['GET', '/v1/instances/{}'],
        ['PUT', '/v1/instances/{}/stop'],
        ['PUT', '/v1/instances/{}/start'],
        ['GET', '/v1/instances/{}/log'],
        ['GET', '/v1/instances/{}/metrics'],
        ['PATCH', '/v1/instances/{}'],
        ['DELETE', '/v1/instances/{}'],
      ] as const) {
        const real = await h.call(method, path.replace('{}', uuid), undefined, asB);
        const fake = await h.call(method, path.replace('{}', ghost), undefined, asB);
        assert.equal(real.status, 404, `${method} ${path}`);
        assert.deepEqual({ ...real.body, op_time_us: 0, data: {}, errors: real.body.errors?.map((e) => ({ ...e, uuid: 'x' })) }, { ...fake.body, op_time_us: 0, data: {}, errors: fake.body.errors?.map((e) => ({ ...e, uuid: 'x' })) });
      }
      assert.equal(instances((await h.call('GET', '/v1/instances', undefined, asB)).body).length, 0);
      // B may reuse the name in its own account; A's instance is untouched.
      assert.equal((await h.call('POST', '/v1/instances', { image: IMG, name: 'secret', autostart: false }, asB)).body.status, 'success');
      assert.equal(instances((await h.call('GET', `/v1/instances/${uuid}`, undefined, asA)).body)[0]?.state, 'running');
      assert.equal((await h.call('GET', '/v1/instances')).status, 401);
    },
    { authenticate: (hd: Record<string, string | undefined>) => tokens[(hd.authorization ?? '').replace('Bearer ', '')], policy: new Policy() },
  );
});

test('images: list with filters, by digest, by tag; owner only for root; other tenants hidden', () => {
  const who: Record<string, AccountPrincipal> = { root: accountPrincipal('ops', 'root'), a: accountPrincipal('alice') };
  const digest = `sha256:${'b'.repeat(64)}`;
  return withNode(
    async (h) => {
      h.catalog.images.push(
        { repository: 'index.n1.local/alice/web', digest, createdAt: new Date(0), owner: 'alice', tags: ['alice/web:latest'], initrdOrRom: true, sizeInBytes: 1234, args: ['/bin/web'], env: {}, users: ['alice'] },
        { repository: 'index.n1.local/carol/db', digest: `sha256:${'c'.repeat(64)}`, createdAt: new Date(0), owner: 'carol', tags: ['carol/db:1'], initrdOrRom: false, sizeInBytes: 9 },
      );
      const asA = { authorization: 'a' };
      const list = await h.call('GET', '/v1/images/list', undefined, asA);
      assert.deepEqual(list.body.data.images, [
        { status: 'success', url: `index.n1.local/alice/web@${digest}`, created_at: '1970-01-01T00:00:00.000Z', tags: ['alice/web:latest'], initrd_or_rom: true, size_in_bytes: 1234, args: ['/bin/web'] },
      ]);
      const asRoot = await h.call('GET', '/v1/images/list', [{ tag: 'carol/db:1' }], { authorization: 'root' });
      assert.equal(asRoot.body.data.images?.length, 1);
      assert.equal(asRoot.body.data.images?.[0]?.owner, 'carol');
      assert.equal((await h.call('GET', `/v1/images/digest/${digest}`, undefined, asA)).body.status, 'success');
      assert.equal((await h.call('GET', '/v1/images/tag/alice/web', undefined, asA)).body.status, 'success');
      const hidden = await h.call('GET', '/v1/images/tag/carol/db:1', undefined, asA);
      assert.equal(hidden.status, 404);
      const bad = await h.call('GET', '/v1/images/digest/sha256:..%2F..%2Fx', undefined, asA);
      assert.equal(bad.status, 400);
      const badFilter = await h.call('GET', '/v1/images/list', [{ tag: 'x', digest }], asA);
      assert.equal(badFilter.status, 400);
      // The contract's path: GET /v1/images, filters as query parameters; same model as /v1/images/list.
      assert.deepEqual((await h.call('GET', '/v1/images', undefined, asA)).body.data.images, list.body.data.images);
      const byTag = await h.call('GET', '/v1/images?tag=carol/db:1', undefined, { authorization: 'root' });
      assert.deepEqual(byTag.body.data.images?.map((i) => i.owner), ['carol']);
      const byDigest = await h.call('GET', `/v1/images?digest=${digest}`, undefined, asA);
      assert.equal(byDigest.body.data.images?.length, 1);
      assert.equal((await h.call('GET', '/v1/images?tag=x', [{ tag: 'y' }], asA)).status, 400);
    },
    { authenticate: (hd: Record<string, string | undefined>) => who[hd.authorization ?? ''], policy: new Policy() },
  );
});
