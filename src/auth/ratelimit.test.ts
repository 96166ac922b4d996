import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthError } from './errors.js';
import { limitKeyOf, RequestRateLimiter } from './ratelimit.js';

test('token bucket: burst, then refill at the rate, with Retry-After from an injected clock', () => {
  let now = 0;
  const rl = new RequestRateLimiter({ ratePerSecond: 2, burst: 3, now: () => now });
  for (let i = 0; i < 3; i++) assert.deepEqual(rl.take('alice'), { ok: true });
  assert.deepEqual(rl.take('alice'), { ok: false, retryAfterSeconds: 1 });
  assert.deepEqual(rl.take('bob'), { ok: true }, 'buckets are per principal');
  now += 500; // one token back
  assert.deepEqual(rl.take('alice'), { ok: true });
  assert.equal(rl.take('alice').ok, false);
  now += 10_000; // refills to burst, not beyond
  for (let i = 0; i < 3; i++) assert.equal(rl.take('alice').ok, true);
  assert.equal(rl.take('alice').ok, false);
  // a big cost at a slow rate says how long
  const slow = new RequestRateLimiter({ ratePerSecond: 0.1, burst: 1, now: () => now });
  assert.equal(slow.take('x').ok, true);
  assert.deepEqual(slow.take('x'), { ok: false, retryAfterSeconds: 10 });
});

test('token bucket: takeOrThrow raises TOOMANYREQUESTS with retry seconds', () => {
  const now = 0;
  const rl = new RequestRateLimiter({ ratePerSecond: 1, burst: 1, now: () => now });
  rl.takeOrThrow('a');
  assert.throws(
    () => rl.takeOrThrow('a'),
    (e: unknown) => e instanceof AuthError && e.code === 'TOOMANYREQUESTS' && e.status === 429 && e.retryAfterSeconds === 1,
  );
});

test('token bucket: memory stays bounded under many principals', () => {
  const rl = new RequestRateLimiter({ maxTrackedKeys: 100, now: () => 0 });
  for (let i = 0; i < 1000; i++) rl.take(`k${i}`);
  assert.equal(rl.trackedKeys, 100);
  assert.throws(() => new RequestRateLimiter({ ratePerSecond: 0 }), RangeError);
  assert.throws(() => new RequestRateLimiter({ burst: Number.NaN }), RangeError);
});

test('limit keys separate accounts from anonymous addresses', () => {
  assert.equal(limitKeyOf({ kind: 'account', name: 'alice' }, '1.2.3.4'), 'account:alice');
  assert.equal(limitKeyOf({ kind: 'anonymous' }, '1.2.3.4'), 'anon:1.2.3.4');
});
