import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from './errors.js';
import { foldUpdates, groupBySelector, isTripleUpdate, type UpdateKind } from './update.js';

const kinds: Record<string, UpdateKind> = { memory_mb: 'value', args: 'list', tags: 'set', env: 'map' };
const current = { memory_mb: 128, args: ['a'], tags: ['x'], env: { A: '1', B: '2' } };

test('fold: set, add and del per property kind, in order, only the named properties', () => {
  assert.deepEqual(foldUpdates(current, [{ prop: 'memory_mb', op: 'set', value: 256 }], kinds), { memory_mb: 256 });
  assert.deepEqual(foldUpdates(current, [{ prop: 'args', op: 'set', value: 'b' }], kinds), { args: ['b'] });
  assert.deepEqual(foldUpdates(current, [{ prop: 'args', op: 'add', value: ['a'] }], kinds), { args: ['a', 'a'] });
  assert.deepEqual(foldUpdates(current, [{ prop: 'tags', op: 'add', value: ['x', 'y', 'y'] }], kinds), { tags: ['x', 'y'] });
  assert.deepEqual(foldUpdates(current, [{ prop: 'tags', op: 'del', value: 'x' }], kinds), { tags: [] });
  assert.deepEqual(foldUpdates(current, [{ prop: 'tags', op: 'del' }], kinds), { tags: [] });
  assert.deepEqual(foldUpdates(current, [{ prop: 'env', op: 'add', value: { C: '3' } }, { prop: 'env', op: 'del', value: ['A'] }], kinds), { env: { B: '2', C: '3' } });
  assert.deepEqual(foldUpdates(current, [{ prop: 'env', op: 'set', value: { Z: '9' } }], kinds), { env: { Z: '9' } });
  assert.deepEqual(foldUpdates(current, [{ prop: 'env', op: 'del' }], kinds), { env: {} });
});

test('fold: what does not apply is EINVAL; a property the platform cannot change is EOPNOTSUPP', () => {
  const errno = (e: unknown): number | undefined => (e as { errno?: number }).errno;
  assert.throws(() => foldUpdates(current, [{ prop: 'memory_mb', op: 'add', value: 1 }], kinds), (e) => errno(e) === Errno.EINVAL);
  assert.throws(() => foldUpdates(current, [{ prop: 'memory_mb', op: 'del' }], kinds), (e) => errno(e) === Errno.EINVAL);
  assert.throws(() => foldUpdates(current, [{ prop: 'args', op: 'set' }], kinds), /set needs a value/);
  assert.throws(() => foldUpdates(current, [{ prop: 'env', op: 'add', value: ['A'] }], kinds), /takes an object/);
  assert.throws(() => foldUpdates(current, [{ prop: 'env', op: 'del', value: [1] }], kinds), /a key or a list of keys/);
  assert.throws(() => foldUpdates(current, [{ prop: 'hostname', op: 'set', value: 'h' }], kinds), (e) => errno(e) === Errno.EOPNOTSUPP);
});

test('triple form detection and grouping by selector (first appearance order, uuids case-folded)', () => {
  assert.equal(isTripleUpdate([{ name: 'a', prop: 'tags', op: 'set', value: [] }]), true);
  assert.equal(isTripleUpdate({ prop: 'tags', op: 'set', value: [] }), true);
  assert.equal(isTripleUpdate([{ name: 'a', memory_mb: 1 }]), false);
  assert.equal(isTripleUpdate(undefined), false);
  const U = 'AAAAAAAA-1111-4111-8111-111111111111';
  const groups = groupBySelector([{ name: 'b', prop: 'p' }, { uuid: U, prop: 'q' }, { name: 'b', prop: 'r' }, { uuid: U.toLowerCase(), prop: 's' }]);
  assert.deepEqual(groups.map((g) => [g.sel, g.items.map((i) => i.prop)]), [[{ name: 'b' }, ['p', 'r']], [{ uuid: U.toLowerCase() }, ['q', 's']]]);
});
