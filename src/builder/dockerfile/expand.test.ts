import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ExpansionError, expandWord, lookupFromEnvList, splitWords } from './expand.js';

const env = lookupFromEnvList(['A=apple', 'EMPTY=', 'SPACE=a b', 'B=${A}']);

test('expands $VAR and ${VAR}; unset is empty', () => {
  assert.equal(expandWord('$A', env), 'apple');
  assert.equal(expandWord('${A}pie', env), 'applepie');
  assert.equal(expandWord('$Apie', env), '');
  assert.equal(expandWord('x$NOPE.y', env), 'x.y');
  assert.equal(expandWord('$B', env), '${A}', 'values are not expanded twice');
});

test('${VAR:-x} / ${VAR-x} differ on set-but-empty', () => {
  assert.equal(expandWord('${EMPTY:-d}', env), 'd');
  assert.equal(expandWord('${EMPTY-d}', env), '');
  assert.equal(expandWord('${NOPE-d}', env), 'd');
  assert.equal(expandWord('${A:-d}', env), 'apple');
});

test('${VAR:+x} / ${VAR+x} differ on set-but-empty', () => {
  assert.equal(expandWord('${A:+yes}', env), 'yes');
  assert.equal(expandWord('${EMPTY:+yes}', env), '');
  assert.equal(expandWord('${EMPTY+yes}', env), 'yes');
  assert.equal(expandWord('${NOPE+yes}', env), '');
});

test('the word of a modifier is itself expanded, with nesting', () => {
  assert.equal(expandWord('${NOPE:-$A/x}', env), 'apple/x');
  assert.equal(expandWord('${NOPE:-${A:+in}}', env), 'in');
  assert.equal(expandWord('${NOPE:-"a b"}', env), 'a b');
});

test('${VAR:?msg} fails with the message', () => {
  assert.throws(() => expandWord('${NOPE:?must be set}', env), /NOPE: must be set/);
  assert.throws(() => expandWord('${EMPTY:?}', env), /EMPTY: is not allowed to be empty/);
  assert.equal(expandWord('${EMPTY?}', env), '');
});

test('escaped dollar is literal; lone dollar stays', () => {
  assert.equal(expandWord('\\$A', env), '$A');
  assert.equal(expandWord('cost $ 5', env), 'cost $ 5');
  assert.equal(expandWord('a$', env), 'a$');
  assert.equal(expandWord('\\\\', env), '\\');
});

test('single quotes are literal, double quotes expand', () => {
  assert.equal(expandWord("'$A'", env), '$A');
  assert.equal(expandWord('"$A"', env), 'apple');
  assert.equal(expandWord('"it\'s $A"', env), "it's apple");
  assert.equal(expandWord('"a \\" b"', env), 'a " b');
  assert.equal(expandWord('"a \\n b"', env), 'a \\n b', 'other escapes stay inside double quotes');
  assert.equal(expandWord('"\\$A"', env), '$A');
});

test('backtick escape character (# escape=`)', () => {
  assert.equal(expandWord('`$A', env, { escape: '`' }), '$A');
  assert.equal(expandWord('C:\\dir\\$A', env, { escape: '`' }), 'C:\\dir\\apple');
});

test('malformed substitutions and quotes are errors', () => {
  for (const bad of ['${', '${A', '${}', '${:-x}', '${A:-x', '"open', "'open", '${A%x}']) {
    assert.throws(() => expandWord(bad, env), ExpansionError, bad);
  }
});

test('raw mode keeps quotes and escapes, expands only $', () => {
  assert.equal(expandWord(`echo "$A" '$A' \\$A`, env, { raw: true }), `echo "apple" '$A' \\$A`);
});

test('splitWords honours quotes and escapes and keeps them', () => {
  assert.deepEqual(splitWords(`a "b c" 'd e' f\\ g`), ['a', '"b c"', "'d e'", 'f\\ g']);
  assert.deepEqual(splitWords('  '), []);
  assert.deepEqual(splitWords('x=""'), ['x=""']);
});

test('property: a string with no $, quotes or escapes expands to itself', () => {
  const plain = fc.string({ maxLength: 40 }).filter((s) => !/[$'"\\]/.test(s));
  fc.assert(
    fc.property(plain, (s) => expandWord(s, env) === s),
    { seed: 42, numRuns: 200 },
  );
});

test('property: single-quoting any quote-free text round-trips, double-quoting with escapes too', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), (s) => {
      const single = s.includes("'") ? s : expandWord(`'${s}'`, env);
      const double = expandWord(`"${s.replace(/[\\"$]/g, (c) => '\\' + c)}"`, env);
      return (s.includes("'") || single === s) && double === s;
    }),
    { seed: 42, numRuns: 200 },
  );
});
