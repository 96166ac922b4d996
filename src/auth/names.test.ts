import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AuthInputError } from './errors.js';
import { isAccountName, isRepositoryName, namespaceOf, parseAccountName, parseRepositoryName } from './names.js';

test('account names follow the strict grammar', () => {
  for (const good of ['alice', 'bob-2', 'a1', 'x'.repeat(40), 'root']) assert.equal(parseAccountName(good), good);
  const bad = ['', 'a', 'Alice', '1alice', 'alice-', 'al--ice', 'al_ice', 'al.ice', 'x'.repeat(41), 'alice\n', '../x'];
  for (const b of bad) {
    assert.throws(() => parseAccountName(b), (e: unknown) => e instanceof AuthInputError && e.what === 'account-name', b);
  }
  assert.equal(isAccountName(42), false);
});

test('reserved names (the official namespace) can never be accounts', () => {
  for (const r of ['official', 'library', 'anonymous']) assert.equal(isAccountName(r), false, r);
});

test('repository names follow the distribution grammar without a host', () => {
  for (const good of ['alice/app', 'official/base-compat', 'a/b/c', 'a__b', 'a.b_c-d', 'app', 'a---b']) {
    assert.equal(parseRepositoryName(good), good);
  }
  const bad = ['', 'Alice/app', 'alice/', '/app', 'alice//app', 'a/../b', '..', 'a/.b', 'a_', 'a___b', 'host:5000/a', 'a b',
    'a'.repeat(256), 'alice/app\u0000'];
  for (const b of bad) assert.equal(isRepositoryName(b), false, JSON.stringify(b));
  assert.throws(() => parseRepositoryName('x/../y'), AuthInputError);
});

test('namespaceOf is the first component', () => {
  assert.equal(namespaceOf('alice/app/web'), 'alice');
  assert.equal(namespaceOf('app'), 'app');
});
