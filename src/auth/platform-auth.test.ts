import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { AccountStore, DEFAULT_ACCOUNT_QUOTAS } from './accounts.js';
import { AuthError } from './errors.js';
import { createPlatformAuthenticator, exceededQuota } from './platform-auth.js';
import { RequestRateLimiter } from './ratelimit.js';

function setup(): { store: AccountStore; token: string } {
  const store = new AccountStore({ database: new Database(':memory:') });
  store.createAccount('alice');
  return { store, token: store.createToken('alice').text };
}

const isUnauthorized = (e: unknown): boolean =>
  e instanceof AuthError && e.code === 'UNAUTHORIZED' && e.challenge === 'Bearer realm="ukc"';

test('platform: Bearer UKC_TOKEN gives the account principal; anything else is 401 with a challenge', () => {
  const { store, token } = setup();
  const auth = createPlatformAuthenticator({ accounts: store });
  assert.deepEqual(auth.authenticate({ headers: { authorization: `Bearer ${token}` } }), {
    kind: 'account', name: 'alice', role: 'user', tokenScope: 'full',
  });
  const bad = [undefined, '', 'Bearer', `Basic ${token}`, `Bearer ${token} x`, `Bearer ${token}x`, `Bearer ${'a'.repeat(9000)}`,
    `Bearer ukc_${'0'.repeat(32)}_${'a'.repeat(43)}`];
  for (const b of bad) {
    assert.throws(() => auth.authenticate({ headers: b === undefined ? {} : { authorization: b } }), isUnauthorized, String(b).slice(0, 30));
  }
});

test('platform: rate limit per account', () => {
  const { store, token } = setup();
  const auth = createPlatformAuthenticator({ accounts: store, rateLimiter: new RequestRateLimiter({ ratePerSecond: 1, burst: 1, now: () => 0 }) });
  auth.authenticate({ headers: { authorization: `Bearer ${token}` } });
  assert.throws(() => auth.authenticate({ headers: { authorization: `Bearer ${token}` } }), (e: unknown) => e instanceof AuthError && e.status === 429);
});

test('property: platform authenticate throws only AuthError on random Authorization headers', () => {
  const { store, token } = setup();
  const auth = createPlatformAuthenticator({ accounts: store });
  const header = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 120 }),
    fc.string({ maxLength: 80 }).map((s) => `Bearer ${s}`),
    fc.nat({ max: token.length }).map((n) => `Bearer ${token.slice(0, n)}`),
  );
  fc.assert(
    fc.property(header, (h) => {
      try {
        const p = auth.authenticate({ headers: { authorization: h } });
        assert.equal(h, `Bearer ${token}`);
        assert.equal(p.name, 'alice');
      } catch (e) {
        if (!(e instanceof AuthError)) throw e;
      }
    }),
    { seed: 99, numRuns: 500 },
  );
});

test('quotas: the first exceeded limit is named', () => {
  const usage = { instances: 15, liveMemoryMb: 4000, services: 8 };
  assert.equal(exceededQuota(DEFAULT_ACCOUNT_QUOTAS, usage, { instances: 1, liveMemoryMb: 96 }), undefined);
  assert.equal(exceededQuota(DEFAULT_ACCOUNT_QUOTAS, usage, { instances: 2 }), 'maxInstances');
  assert.equal(exceededQuota(DEFAULT_ACCOUNT_QUOTAS, usage, { liveMemoryMb: 97 }), 'maxLiveMemoryMb');
  assert.equal(exceededQuota(DEFAULT_ACCOUNT_QUOTAS, usage, { services: 1 }), 'maxServices');
});
