import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { loadOrCreateSigningKey, publicKeyPem, trustedKeyFromPem } from './keyfile.js';
import { signJwt, verifyJwt } from './jwt.js';

test('signing key: created once with mode 0600, reloaded with the same kid, public half pins it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-key-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keys', 'registry.pem');
  const k1 = loadOrCreateSigningKey(path);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const k2 = loadOrCreateSigningKey(path);
  assert.equal(k2.kid, k1.kid);
  const pinned = trustedKeyFromPem(publicKeyPem(k1));
  assert.equal(pinned.kid, k1.kid);
  const claims = { iss: 'i', sub: 's', aud: 'a', exp: 2_000, iat: 1_000, access: [] };
  assert.equal(verifyJwt(signJwt(claims, k2), { keys: [pinned], issuer: 'i', audience: 'a', now: () => 1_000_000 }).sub, 's');
  const es = loadOrCreateSigningKey(join(dir, 'es.pem'), 'ES256');
  assert.equal(trustedKeyFromPem(publicKeyPem(es)).alg, 'ES256');
  const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }) as string;
  assert.throws(() => trustedKeyFromPem(rsa), TypeError);
});
