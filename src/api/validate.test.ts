import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import * as v from './validate.js';

const person = v.object({
  name: v.string({ minLength: 1, maxLength: 8 }),
  age: v.optional(v.int({ min: 0, max: 150 })),
  tags: v.optional(v.array(v.string(), { maxItems: 3 })),
});

test('closed objects: unknown fields are rejected with their path', () => {
  assert.throws(() => person.parse({ name: 'a', nick: 'b' }), (e: unknown) => e instanceof v.ValidationError && e.path === 'nick' && /unknown field/.test(e.message));
  assert.throws(() => v.object({ inner: person }).parse({ inner: { name: 'a', x: 1 } }), /inner\.x: unknown field/);
});

test('types are strict: no coercion, no null for optional fields', () => {
  assert.throws(() => person.parse({ name: 1 }), /name: expected string, got number/);
  assert.throws(() => person.parse({ name: 'a', age: '3' }), /age: expected integer/);
  assert.throws(() => person.parse({ name: 'a', age: 1.5 }), /age: expected integer/);
  assert.throws(() => person.parse({ name: 'a', age: null }), /age: expected integer, got null/);
  assert.throws(() => person.parse({ name: 'a', tags: ['x', 2] }), /tags\[1\]: expected string/);
  assert.throws(() => person.parse([]), /expected object, got array/);
  assert.throws(() => person.parse({}), /name: required field missing/);
});

test('bounds and enums are enforced', () => {
  assert.throws(() => person.parse({ name: '' }), /at least 1/);
  assert.throws(() => person.parse({ name: 'a', age: 151 }), /<= 150/);
  assert.throws(() => person.parse({ name: 'a', tags: ['1', '2', '3', '4'] }), /at most 3 items/);
  assert.throws(() => v.oneOf(['a', 'b'] as const).parse('c'), /one of a, b/);
  assert.deepEqual(person.parse({ name: 'ok', age: 3 }), { name: 'ok', age: 3 });
});

test('selector demands exactly one of uuid or name', () => {
  const s = v.selector({ force: v.optional(v.bool()) });
  assert.deepEqual(s.parse({ name: 'x', force: true }), { name: 'x', force: true });
  assert.throws(() => s.parse({}), /exactly one of uuid or name/);
  assert.throws(() => s.parse({ uuid: 'a', name: 'b' }), /exactly one of uuid or name/);
  assert.throws(() => s.parse({ name: 'x', other: 1 }), /other: unknown field/);
});

test('record checks keys and values; byType picks the branch by JSON type', () => {
  const env = v.record(v.string(), { key: v.string({ pattern: /^[A-Z]+$/ }), maxEntries: 2 });
  assert.deepEqual({ ...env.parse({ A: '1' }) }, { A: '1' });
  assert.throws(() => env.parse({ a: '1' }), /a: must match/);
  assert.throws(() => env.parse({ A: 1 }), /A: expected string/);
  assert.throws(() => env.parse({ A: '1', B: '2', C: '3' }), /at most 2 entries/);
  const img = v.byType({ string: v.string(), object: v.object({ url: v.string() }) });
  assert.equal(img.parse('x'), 'x');
  assert.deepEqual(img.parse({ url: 'y' }), { url: 'y' });
  assert.throws(() => img.parse(3), /expected string or object, got number/);
  assert.throws(() => img.parse({ url: 'y', z: 1 }), /z: unknown field/);
});

test('property: arbitrary JSON either parses to a well-typed value or raises ValidationError', () => {
  fc.assert(
    fc.property(fc.jsonValue(), (value) => {
      try {
        const out = person.parse(value);
        assert.equal(typeof out.name, 'string');
        assert.ok(out.name.length >= 1 && out.name.length <= 8);
        if (out.age !== undefined) assert.ok(Number.isInteger(out.age));
        const keys = Object.keys(value as object);
        assert.ok(keys.every((k) => ['name', 'age', 'tags'].includes(k)));
      } catch (err) {
        assert.ok(err instanceof v.ValidationError, `unexpected ${String(err)}`);
      }
    }),
    { numRuns: 500 },
  );
});

test('property: a valid object plus any extra key is always rejected', () => {
  fc.assert(
    fc.property(
      fc.string({ minLength: 1, maxLength: 8 }),
      fc.string({ minLength: 1 }).filter((k) => !['name', 'age', 'tags', '__proto__'].includes(k)),
      fc.jsonValue(),
      (name, extra, value) => {
        assert.deepEqual(person.parse({ name }), { name });
        assert.throws(() => person.parse({ name, [extra]: value }), v.ValidationError);
      },
    ),
    { numRuns: 300 },
  );
});
