import { test } from 'node:test';
import assert from 'node:assert/strict';
import { endToEndHeaders, requestHead } from './headers.js';

test('requestHead: passes end-to-end headers through in order and case, sets x-forwarded-*', () => {
  const h = requestHead(['Host', 'a.example', 'Accept', '*/*', 'X-Forwarded-Proto', 'https', 'Keep-Alive', 'timeout=5', 'Cookie', 'a=1', 'Cookie', 'b=2'], '10.0.0.9', false);
  assert.equal(h.host, 'a.example');
  assert.equal(h.hostRepeated, false);
  assert.equal(h.body, false);
  assert.deepEqual(h.headers, ['Host', 'a.example', 'Accept', '*/*', 'Cookie', 'a=1', 'Cookie', 'b=2', 'x-forwarded-for', '10.0.0.9', 'x-forwarded-proto', 'http']);
});

test('requestHead: appends the peer to every x-forwarded-for line, drops Connection-listed fields', () => {
  const h = requestHead(
    ['host', 'a', 'X-Forwarded-For', '1.1.1.1', 'x-forwarded-for', '2.2.2.2', 'Connection', 'keep-alive, X-Secret', 'x-secret', 's', 'TE', 'trailers', 'X-Kept', 'k'],
    '10.0.0.9',
    true,
  );
  assert.deepEqual(h.headers, ['host', 'a', 'X-Kept', 'k', 'x-forwarded-for', '1.1.1.1, 2.2.2.2, 10.0.0.9', 'x-forwarded-proto', 'https']);
});

test('requestHead: a body is seen from content-length or transfer-encoding; chunked is re-declared for node to frame', () => {
  assert.equal(requestHead(['Host', 'a', 'Content-Length', '0'], 'p', false).body, false);
  assert.equal(requestHead(['Host', 'a', 'Content-Length', '12'], 'p', false).body, true);
  const te = requestHead(['Host', 'a', 'Transfer-Encoding', 'chunked'], 'p', false);
  assert.equal(te.body, true);
  assert.deepEqual(te.headers.slice(0, 4), ['Host', 'a', 'transfer-encoding', 'chunked']);
});

test('requestHead: two Host lines are flagged (answered 400)', () => {
  const h = requestHead(['Host', 'a', 'Host', 'b'], 'p', false);
  assert.equal(h.hostRepeated, true);
});

test('endToEndHeaders: strips hop-by-hop response fields and the ones Connection names', () => {
  assert.deepEqual(
    endToEndHeaders(['Content-Type', 'text/plain', 'Transfer-Encoding', 'chunked', 'Connection', 'close, X-Hop', 'X-Hop', '1', 'Set-Cookie', 'a', 'Set-Cookie', 'b', 'Keep-Alive', 'timeout=5']),
    ['Content-Type', 'text/plain', 'Set-Cookie', 'a', 'Set-Cookie', 'b'],
  );
});
