import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Errno } from './errors.js';
import { batchItems, listing, oneDialect, page, queryBool, queryEnum, queryInt, querySelectors, selectorFromPath } from './query.js';

const q = (s: string): URLSearchParams => new URLSearchParams(s);
const U1 = '11111111-1111-4111-8111-111111111111';

test('selectors from the query: repeated uuid and name, in order; none is undefined; bounded', () => {
  assert.deepEqual(querySelectors(q(`uuid=${U1.toUpperCase()}&name=web&name=db`), 10), [{ uuid: U1 }, { name: 'web' }, { name: 'db' }]);
  assert.equal(querySelectors(q('details=true'), 10), undefined);
  assert.throws(() => querySelectors(q('name=a&name=b&name=c'), 2), (e: { errno?: number }) => e.errno === Errno.EINVAL);
  assert.throws(() => querySelectors(q('name='), 2), /1 to 128/);
  assert.throws(() => oneDialect([{ name: 'a' }], [{ name: 'b' }]), /not both/);
  assert.deepEqual(selectorFromPath(U1), { uuid: U1 });
  assert.deepEqual(selectorFromPath('web'), { name: 'web' });
});

test('paging: count items after the cursor `from`; each item once; an unknown cursor is refused', () => {
  const items = ['a', 'b', 'c', 'd', 'e'].map((uuid) => ({ uuid }));
  const seen: string[] = [];
  let from: string | undefined;
  for (;;) {
    const p = page(items, q(`count=2${from ? `&from=${from}` : ''}`));
    seen.push(...p.map((i) => i.uuid));
    if (p.length < 2) break;
    from = p[p.length - 1]!.uuid;
  }
  assert.deepEqual(seen, ['a', 'b', 'c', 'd', 'e']);
  assert.deepEqual(page(items, q('')).length, 5);
  assert.throws(() => page(items, q('from=zz')), /no item zz/);
  assert.throws(() => page(items, q('count=0')), /at least 1/);
  assert.throws(() => page(items, q('count=two')), /integer/);
});

test('typed query values', () => {
  assert.equal(queryInt(q('timeout_ms=-1'), 'timeout_ms', { min: -1 }), -1);
  assert.equal(queryInt(q(''), 'timeout_ms'), undefined);
  assert.equal(queryBool(q('details=false'), 'details', true), false);
  assert.throws(() => queryBool(q('details=maybe'), 'details', true), /true or false/);
  assert.equal(queryEnum(q('state=running'), 'state', ['running', 'stopped'] as const), 'running');
  assert.throws(() => queryEnum(q('state=x'), 'state', ['running'] as const), /one of running/);
});

test('paging: offset/limit, order and sortby; batch items from the query or the body, never both', () => {
  const items = ['a', 'b', 'c', 'd'].map((uuid) => ({ uuid }));
  assert.deepEqual(page(items, q('offset=1&limit=2')).map((i) => i.uuid), ['b', 'c']);
  assert.throws(() => page(items, q('offset=1&from=a')), /exclude each other/);
  assert.deepEqual(listing(items, q('order=desc&count=3&sortby=create_time')).map((i) => i.uuid), ['d', 'c', 'b']);
  assert.throws(() => listing(items, q('sortby=name')), /create_time/);
  const schema = { parse: (x: unknown) => x as { name?: string; state?: string }[] };
  assert.deepEqual(batchItems(q('name=web&state=running'), undefined, schema, 10, (qq) => ({ state: qq.get('state') ?? undefined })), [{ name: 'web', state: 'running' }]);
  assert.deepEqual(batchItems(q(''), [{ name: 'db' }], schema, 10), [{ name: 'db' }]);
  assert.equal(batchItems(q('details=false'), undefined, schema, 10), undefined);
  assert.throws(() => batchItems(q('name=a'), [{ name: 'b' }], schema, 10), /not both/);
});
