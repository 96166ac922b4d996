import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createHash } from 'node:crypto';
import { DigestError, DigestingStream, digestOf, parseDigest, tryParseDigest } from './digest.js';

const SHA256_EMPTY = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

test('parses canonical sha256 and sha512 digests', () => {
  const d = parseDigest(SHA256_EMPTY);
  assert.equal(d.algorithm, 'sha256');
  assert.equal(d.text, SHA256_EMPTY);
  const hex512 = createHash('sha512').update('').digest('hex');
  assert.equal(parseDigest(`sha512:${hex512}`).hex, hex512);
});

test('hostile digests are refused before any use (security row 4)', () => {
  const hostile = [
    'sha256:../../etc/passwd',
    'sha256:' + 'A'.repeat(64),
    'sha256:' + 'a'.repeat(63),
    'sha256:' + 'a'.repeat(65),
    'sha256:' + 'a'.repeat(62) + '/x',
    'sha256:',
    ':' + 'a'.repeat(64),
    'sha256' + 'a'.repeat(64),
    'SHA256:' + 'a'.repeat(64),
    'sha256:' + 'a'.repeat(64) + '\n',
    '',
    'x'.repeat(10_000),
  ];
  for (const h of hostile) {
    assert.throws(() => parseDigest(h), (e: unknown) => e instanceof DigestError && e.kind === 'malformed', h);
  }
});

test('a well-formed digest of an unknown algorithm is "unsupported", not "malformed"', () => {
  assert.throws(
    () => parseDigest('md5:d41d8cd98f00b204e9800998ecf8427e'),
    (e: unknown) => e instanceof DigestError && e.kind === 'unsupported',
  );
  assert.equal(tryParseDigest('md5:abc'), undefined);
});

test('digestOf and DigestingStream agree with node:crypto', async () => {
  assert.equal(digestOf('').text, SHA256_EMPTY);
  const s = new DigestingStream();
  const chunks: Buffer[] = [];
  await pipeline(Readable.from([Buffer.from('hello '), Buffer.from('world')]), s, async (src) => {
    for await (const c of src) chunks.push(c as Buffer);
  });
  const r = s.result();
  assert.equal(r.size, 11);
  assert.equal(r.digest.text, digestOf('hello world').text);
  assert.equal(Buffer.concat(chunks).toString(), 'hello world');
});
