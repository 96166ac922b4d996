import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { AuthInputError } from './errors.js';
import { formatScope, parseResourceScope, parseScopes } from './scope.js';

const isScopeError = (e: unknown): boolean => e instanceof AuthInputError && e.what === 'scope';

test('parses repository scopes and orders actions', () => {
  const s = parseResourceScope('repository:alice/app:push,pull');
  assert.deepEqual(s, { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] });
  assert.equal(formatScope(s), 'repository:alice/app:pull,push');
  assert.deepEqual(parseResourceScope('repository:a/b:*'), { type: 'repository', name: 'a/b', actions: ['pull', 'push', 'delete'] });
});

test('several scopes: repeated values, space-separated items, merged per repository', () => {
  const s = parseScopes(['repository:alice/a:pull', 'repository:official/b:pull repository:alice/a:push', 'registry:catalog:*']);
  assert.deepEqual(s, [
    { type: 'repository', name: 'alice/a', actions: ['pull', 'push'] },
    { type: 'repository', name: 'official/b', actions: ['pull'] },
    { type: 'other', resourceType: 'registry', name: 'catalog', actions: ['*'] },
  ]);
  assert.deepEqual(parseScopes([]), []);
});

test('unknown resource types are kept apart (the token service grants nothing for them)', () => {
  const [s] = parseScopes(['repository(plugin):alice/x:pull']);
  assert.equal(s?.type, 'other');
});

test('hostile scopes are refused with the typed error', () => {
  const hostile = [
    'repository:alice/app',
    'repository:alice/app:',
    'repository::pull',
    ':alice/app:pull',
    'repository:alice/../root:pull',
    'repository:Alice/App:pull',
    'repository:alice/app:pull,,push',
    'repository:alice/app:admin',
    'repository:alice/app:PULL',
    'repository:host:5000/alice/app:pull',
    'REPOSITORY:alice/app:pull',
    'repository:alice/app:pull\n',
    'other:na me:pull',
    'repo$:x:pull',
  ];
  for (const h of hostile) assert.throws(() => parseScopes([h]), isScopeError, JSON.stringify(h));
});

test('scope limits are named and enforced', () => {
  const many = Array.from({ length: 33 }, (_, i) => `repository:alice/a${i}:pull`).join(' ');
  assert.throws(() => parseScopes([many]), isScopeError);
  assert.throws(() => parseScopes(['repository:alice/a:pull'], { maxScopeTextLength: 5, maxScopes: 32 }), isScopeError);
  assert.throws(() => parseScopes(['x'.repeat(5000)]), isScopeError);
});

test('property: the scope parser returns checked scopes or throws only the typed error', () => {
  const piece = fc.constantFrom('repository', 'registry', ':', ',', '/', 'alice', 'pull', 'push', '*', ' ', '..', 'A', '(x)', '');
  const structured = fc.array(piece, { maxLength: 12 }).map((a) => a.join(''));
  const anyText = fc.string({ unit: 'binary', maxLength: 200 });
  fc.assert(
    fc.property(fc.array(fc.oneof(structured, anyText), { maxLength: 4 }), (values) => {
      try {
        const scopes = parseScopes(values);
        for (const s of scopes) {
          // Whatever was accepted must round-trip through its text form.
          assert.deepEqual(parseResourceScope(formatScope(s)), s);
        }
      } catch (e) {
        if (!isScopeError(e)) throw e;
      }
    }),
    { seed: 20240611, numRuns: 2000 },
  );
});
