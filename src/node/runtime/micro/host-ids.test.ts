import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HostIdRanges, USERNS_SIZE } from './host-ids.js';

test('host id ranges: distinct ranges, recorded ones reserved, released ones reused, foreign ones refused, exhaustion is an error', () => {
  const r = new HostIdRanges(1_000_000, 3);
  const a = r.take();
  const b = r.take();
  assert.equal(a, 1_000_000);
  assert.equal(b, 1_000_000 + USERNS_SIZE);
  assert.equal(r.reserve(1_000_000 + 2 * USERNS_SIZE), true);
  assert.throws(() => r.take(), /all 3 user namespace id ranges are in use/);
  r.release(a);
  assert.equal(r.take(), a);
  assert.equal(r.reserve(0), false);
  assert.equal(r.reserve(1_000_001), false, 'not on a range boundary');
  assert.equal(r.reserve(1_000_000 + 3 * USERNS_SIZE), false, 'past the last range');
  assert.equal(r.inUse, 3);
  assert.throws(() => new HostIdRanges(2 ** 32 - USERNS_SIZE, 2), RangeError);
});
