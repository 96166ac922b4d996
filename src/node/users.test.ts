// Accounts and quotas on the node API (POST /v1/users, GET /v1/users/quotas, EDQUOT on instance
// create/start and service create) and the per-account request rate (429 + Retry-After), over
// a real AccountStore and the node API's own test doubles.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { AccountStore } from '../auth/index.js';
import { makeHarness, type Harness } from './harness.test-support.js';
import { settle } from './test-doubles.test-support.js';
import { Errno, localTokenVerifier, tokenAuthenticator, userDirectoryFromAccounts, type NodeApiOptions } from './index.js';

const IMG = 'alice/httpserver:latest';
type Headers = Record<string, string>;

interface Setup {
  h: Harness;
  accounts: AccountStore;
  root: Headers;
  alice: Headers;
  bob: Headers;
  close(): Promise<void>;
}

const bearer = (t: string): Headers => ({ authorization: `Bearer ${t}` });

async function setup(extra: Partial<NodeApiOptions> = {}, aliceQuotas = { maxInstances: 3, maxLiveMemoryMb: 300, maxServices: 1 }): Promise<Setup> {
  const accounts = new AccountStore({ database: new Database(':memory:') });
  accounts.createAccount('root', { role: 'root' });
  accounts.createAccount('alice', { quotas: aliceQuotas });
  accounts.createAccount('bob');
  const h = await makeHarness({ authenticate: tokenAuthenticator(localTokenVerifier(accounts)), users: userDirectoryFromAccounts(accounts), ...extra });
  return {
    h,
    accounts,
    root: bearer(accounts.createToken('root').text),
    alice: bearer(accounts.createToken('alice').text),
    bob: bearer(accounts.createToken('bob').text),
    async close() {
      await h.cleanup();
      accounts.close();
    },
  };
}

describe('POST /v1/users', () => {
  it('root creates an account and gets its token once; the token works at once', async () => {
    const s = await setup();
    try {
      const r = await s.h.call('POST', '/v1/users', { name: 'carol', quotas: { instances: 2 } }, s.root);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      const [carol] = r.body.data.users ?? [];
      assert.equal(carol?.name, 'carol');
      assert.deepEqual(carol?.quotas, { instances: 2, live_memory_mb: 4096, services: 8 });
      assert.match(String(carol?.token), /^ukc_[0-9a-f]{32}_/);
      const q = await s.h.call('GET', '/v1/users/quotas', undefined, bearer(String(carol?.token)));
      assert.equal(q.status, 200);
      assert.equal(q.body.data.quotas?.[0]?.account, 'carol');
      // The store keeps only a hash: listing tokens never shows the text again.
      assert.ok(!JSON.stringify(s.accounts.listTokens('carol')).includes(String(carol?.token).slice(37)));
      // A second create of the same name is EEXIST and makes no new token.
      const again = await s.h.call('POST', '/v1/users', [{ name: 'carol' }], s.root);
      assert.equal(again.status, 409);
      assert.equal(again.body.errors?.[0]?.error, Errno.EEXIST);
      assert.equal(s.accounts.listTokens('carol').length, 1);
    } finally {
      await s.close();
    }
  });

  it('only root: another account gets EACCES and nothing is created', async () => {
    const s = await setup();
    try {
      const r = await s.h.call('POST', '/v1/users', { name: 'mallory' }, s.alice);
      assert.equal(r.status, 403);
      assert.equal(r.body.errors?.[0]?.error, Errno.EACCES);
      assert.equal(s.accounts.getAccount('mallory'), undefined);
      const anon = await s.h.call('POST', '/v1/users', { name: 'mallory' });
      assert.equal(anon.status, 401);
      assert.equal(s.accounts.getAccount('mallory'), undefined);
    } finally {
      await s.close();
    }
  });

  it('hostile bodies are refused with EINVAL (or 413) and change nothing', async () => {
    const s = await setup({ limits: { maxBodyBytes: 4096, maxBatchItems: 50 } });
    try {
      const before = s.accounts.listAccounts().length;
      const bodies: unknown[] = [
        '{"name": "x"',
        'null',
        [],
        { name: 'eve', role: 'root' },
        { name: 'eve', quotas: { instances: -1 } },
        { name: 'eve', quotas: { instances: 1.5 } },
        { name: 'eve', quotas: { cpu: 4 } },
        { name: '../etc' },
        { name: 'Root' },
        { name: 'root' },
        { name: 'a'.repeat(65) },
        { name: 12 },
        { ['__proto__']: { name: 'eve' } },
        Array.from({ length: 51 }, (_, i) => ({ name: `u${i}` })),
        { name: 'eve', pad: 'x'.repeat(5000) },
      ];
      for (const body of bodies) {
        const r = await s.h.call('POST', '/v1/users', body, s.root);
        assert.ok(r.status === 400 || r.status === 413 || r.status === 409, `${JSON.stringify(body).slice(0, 60)} → ${r.status}`);
        assert.equal(r.body.status, 'error');
      }
      assert.equal(s.accounts.listAccounts().length, before);
    } finally {
      await s.close();
    }
  });
});

describe('quotas', () => {
  it('GET /v1/users/quotas answers the caller\'s quotas and usage (live memory = starting + running)', async () => {
    const s = await setup();
    try {
      await s.h.call('POST', '/v1/instances', { image: IMG, name: 'a1', memory_mb: 100 }, s.alice);
      await s.h.call('POST', '/v1/instances', { image: IMG, name: 'a2', memory_mb: 50, autostart: false }, s.alice);
      await settle();
      const q = await s.h.call('GET', '/v1/users/quotas', undefined, s.alice);
      const [mine] = q.body.data.quotas ?? [];
      assert.equal(mine?.account, 'alice');
      assert.match(String(mine?.uuid), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      // The contract's QuotasStats: ukc's own three, and what follows from them.
      assert.deepEqual(mine?.used, { instances: 2, live_instances: 1, live_vcpus: 1, live_memory_mb: 100, service_groups: 0, services: 0, volumes: 0, total_volume_mb: 0 });
      assert.deepEqual(mine?.hard, { instances: 3, live_instances: 3, live_vcpus: 3 * 64, live_memory_mb: 300, service_groups: 1, services: 1, volumes: 0, total_volume_mb: 0 });
      assert.deepEqual(mine?.limits, { min_memory_mb: 16, max_memory_mb: 65536, min_vcpus: 1, max_vcpus: 64, min_volume_mb: 0, max_volume_mb: 0, min_autoscale_size: 0, max_autoscale_size: 0 });
      // By the account's uuid (or name): the same answer; another account looks missing.
      const byUuid = await s.h.call('GET', `/v1/users/${String(mine?.uuid)}/quotas`, undefined, s.alice);
      assert.deepEqual(byUuid.body.data.quotas?.[0]?.used, mine?.used);
      assert.equal((await s.h.call('GET', '/v1/users/alice/quotas', undefined, s.alice)).status, 200);
      assert.equal((await s.h.call('GET', '/v1/users/bob/quotas', undefined, s.alice)).status, 404);
      // Bob's usage is his own.
      const b = await s.h.call('GET', '/v1/users/quotas', undefined, s.bob);
      const bobUsed = b.body.data.quotas?.[0]?.used as Record<string, number>;
      assert.deepEqual([bobUsed.instances, bobUsed.live_memory_mb, bobUsed.services], [0, 0, 0]);
      const withBody = await s.h.call('GET', '/v1/users/quotas', { account: 'bob' }, s.alice);
      assert.equal(withBody.status, 400);
    } finally {
      await s.close();
    }
  });

  it('the (N+1)th instance is refused with EDQUOT and not created; replicas count too', async () => {
    const s = await setup();
    try {
      for (const name of ['i1', 'i2', 'i3']) {
        const r = await s.h.call('POST', '/v1/instances', { image: IMG, name, memory_mb: 16 }, s.alice);
        assert.equal(r.status, 200, JSON.stringify(r.body));
      }
      const over = await s.h.call('POST', '/v1/instances', { image: IMG, name: 'i4', memory_mb: 16 }, s.alice);
      assert.equal(over.body.status, 'error');
      assert.equal(over.body.errors?.[0]?.error, Errno.EDQUOT);
      assert.match(String(over.body.message), /quota exceeded: instances 3 in use \+ 1 asked > 3 allowed/);
      const list = await s.h.call('GET', '/v1/instances', undefined, s.alice);
      assert.equal(list.body.data.instances?.length, 3);
      // Another account is not affected by alice's quota.
      const bob = await s.h.call('POST', '/v1/instances', { image: IMG, name: 'b1', memory_mb: 16, replicas: 3 }, s.bob);
      assert.equal(bob.status, 200, JSON.stringify(bob.body));
      // Deleting one frees the slot; two replicas at once do not fit.
      await s.h.call('DELETE', '/v1/instances/i3', undefined, s.alice);
      const replicas = await s.h.call('POST', '/v1/instances', { image: IMG, name: 'r', memory_mb: 16, replicas: 1 }, s.alice);
      assert.equal(replicas.body.errors?.[0]?.error, Errno.EDQUOT);
      const one = await s.h.call('POST', '/v1/instances', { image: IMG, name: 'i5', memory_mb: 16 }, s.alice);
      assert.equal(one.status, 200);
    } finally {
      await s.close();
    }
  });

  it('live memory: a create or a start that would go over is EDQUOT; a stopped instance frees its memory', async () => {
    const s = await setup();
    try {
      assert.equal((await s.h.call('POST', '/v1/instances', { image: IMG, name: 'm1', memory_mb: 200 }, s.alice)).status, 200);
      await settle();
      const big = await s.h.call('POST', '/v1/instances', { image: IMG, name: 'm2', memory_mb: 128 }, s.alice);
      assert.equal(big.body.errors?.[0]?.error, Errno.EDQUOT);
      assert.match(String(big.body.message), /live memory 200 MB in use \+ 128 MB asked > 300 MB allowed/);
      // Created stopped it fits (instances count only); starting it does not.
      assert.equal((await s.h.call('POST', '/v1/instances', { image: IMG, name: 'm2', memory_mb: 128, autostart: false }, s.alice)).status, 200);
      const start = await s.h.call('PUT', '/v1/instances/m2/start', undefined, s.alice);
      assert.equal(start.body.errors?.[0]?.error, Errno.EDQUOT);
      const m2 = await s.h.call('GET', '/v1/instances/m2', undefined, s.alice);
      assert.equal(m2.body.data.instances?.[0]?.state, 'stopped');
      await s.h.call('PUT', '/v1/instances/m1/stop', { force: true }, s.alice);
      await settle();
      const again = await s.h.call('PUT', '/v1/instances/m2/start', undefined, s.alice);
      assert.equal(again.status, 200, JSON.stringify(again.body));
    } finally {
      await s.close();
    }
  });

  it('a batch start cannot together go over the memory quota', async () => {
    const s = await setup();
    try {
      for (const name of ['x', 'y', 'z']) {
        assert.equal((await s.h.call('POST', '/v1/instances', { image: IMG, name, memory_mb: 128, autostart: false }, s.alice)).status, 200);
      }
      const r = await s.h.call('PUT', '/v1/instances/start', [{ name: 'x' }, { name: 'y' }, { name: 'z' }], s.alice);
      assert.equal(r.body.status, 'partial_success', JSON.stringify(r.body));
      assert.equal(r.body.errors?.length, 1);
      assert.equal(r.body.errors?.[0]?.error, Errno.EDQUOT);
      await settle();
      const q = await s.h.call('GET', '/v1/users/quotas', undefined, s.alice);
      assert.equal((q.body.data.quotas?.[0]?.used as { live_memory_mb: number }).live_memory_mb, 256);
    } finally {
      await s.close();
    }
  });

  it('service groups: the (N+1)th is EDQUOT, inline groups count too', async () => {
    const s = await setup({ gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) } });
    try {
      const svc = { services: [{ port: 443, destination_port: 8080, handlers: ['http', 'tls'] }] };
      const first = await s.h.call('POST', '/v1/services', svc, s.alice);
      assert.equal(first.status, 200, JSON.stringify(first.body));
      const second = await s.h.call('POST', '/v1/services', svc, s.alice);
      assert.equal(second.body.errors?.[0]?.error, Errno.EDQUOT);
      assert.match(String(second.body.message), /service groups 1 in use \+ 1 asked > 1 allowed/);
      const inline = await s.h.call('POST', '/v1/instances', { image: IMG, service_group: svc }, s.alice);
      assert.equal(inline.body.errors?.[0]?.error, Errno.EDQUOT);
      assert.equal((await s.h.call('GET', '/v1/instances', undefined, s.alice)).body.data.instances?.length, 0);
      assert.equal((await s.h.call('POST', '/v1/services', svc, s.bob)).status, 200);
    } finally {
      await s.close();
    }
  });
});

describe('request rate per account', () => {
  it('over the burst: 429 in the v1 envelope with Retry-After; other accounts unaffected', async () => {
    const s = await setup({ rateLimit: { ratePerSecond: 0.5, burst: 3 } });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await s.h.call('GET', '/v1/instances', undefined, s.alice)).status, 200);
      const res = await s.h.api.handle({ method: 'GET', url: '/v1/instances', headers: s.alice });
      assert.equal(res.status, 429);
      assert.equal(res.headers['retry-after'], '2');
      const body = JSON.parse(res.body) as { status: string; message: string; errors: { status: number; error: number }[] };
      assert.equal(body.status, 'error');
      assert.equal(body.errors[0]?.status, 429);
      assert.match(body.message, /too many requests/);
      assert.equal((await s.h.call('GET', '/v1/instances', undefined, s.bob)).status, 200);
      // Health checks are not counted and need no token.
      assert.equal((await s.h.call('GET', '/v1/healthz')).status, 200);
    } finally {
      await s.close();
    }
  });

  it('no token is 401 with a Bearer challenge, before any rate accounting', async () => {
    const s = await setup();
    try {
      const res = await s.h.api.handle({ method: 'GET', url: '/v1/users/quotas' });
      assert.equal(res.status, 401);
      assert.match(res.headers['www-authenticate'] ?? '', /^Bearer realm=/);
    } finally {
      await s.close();
    }
  });
});
