import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, createSecretKey, generateKeyPairSync, sign as cryptoSign } from 'node:crypto';
import fc from 'fast-check';
import {
  generateSigningKey,
  JwtError,
  parseJwt,
  signJwt,
  signingKeyFrom,
  trustedKeyOf,
  verifyJwt,
  type JwtClaims,
  type JwtErrorKind,
  type JwtVerifyOptions,
  type SigningKey,
  type TrustedKey,
} from './jwt.js';

const NOW = 1_700_000_000;
const ed = generateSigningKey('EdDSA');
const es = generateSigningKey('ES256');

function claims(over: Partial<JwtClaims> = {}): JwtClaims {
  return {
    iss: 'ukc-test',
    sub: 'alice',
    aud: 'registry.test',
    exp: NOW + 300,
    nbf: NOW,
    iat: NOW,
    jti: 'j1',
    access: [{ type: 'repository', name: 'alice/app', actions: ['pull'] }],
    ...over,
  };
}

function opts(keys: readonly TrustedKey[] = [trustedKeyOf(ed), trustedKeyOf(es)]): JwtVerifyOptions {
  return { keys, issuer: 'ukc-test', audience: 'registry.test', now: () => NOW * 1000 };
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

function expectJwtError(fn: () => unknown, kind: JwtErrorKind): void {
  assert.throws(fn, (e: unknown) => e instanceof JwtError && e.kind === kind);
}

test('EdDSA and ES256 tokens round-trip through sign and verify', () => {
  for (const key of [ed, es]) {
    const token = signJwt(claims(), key);
    const got = verifyJwt(token, opts());
    assert.equal(got.sub, 'alice');
    assert.deepEqual(got.access, [{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
    assert.equal(parseJwt(token).header.kid, key.kid);
  }
});

test('hostile: alg none is refused (security row 8)', () => {
  const header = b64({ alg: 'none', kid: ed.kid, typ: 'JWT' });
  expectJwtError(() => verifyJwt(`${header}.${b64(claims())}.`, opts()), 'malformed'); // empty signature part
  expectJwtError(() => verifyJwt(`${header}.${b64(claims())}.AAAA`, opts()), 'algorithm');
  expectJwtError(() => verifyJwt(`${b64({ alg: 'None', kid: ed.kid })}.${b64(claims())}.AAAA`, opts()), 'algorithm');
});

test('hostile: HS256 signed with the public key as HMAC secret is refused (key confusion)', () => {
  const header = b64({ alg: 'HS256', kid: ed.kid, typ: 'JWT' });
  const input = `${header}.${b64(claims())}`;
  const secret = ed.publicKey.export({ type: 'spki', format: 'pem' });
  const sig = createHmac('sha256', secret).update(input).digest('base64url');
  expectJwtError(() => verifyJwt(`${input}.${sig}`, opts()), 'algorithm');
  // Even a verifier misconfigured to list HS256 never accepts it: only our two algorithms survive.
  const bad = { ...opts(), algorithms: ['HS256' as never, 'EdDSA' as const] };
  expectJwtError(() => verifyJwt(`${input}.${sig}`, bad), 'algorithm');
});

test('hostile: a token signed by an untrusted key reusing a trusted kid is refused', () => {
  const attacker = generateSigningKey('EdDSA');
  const forged: SigningKey = { ...attacker, kid: ed.kid };
  expectJwtError(() => verifyJwt(signJwt(claims({ sub: 'root' }), forged), opts()), 'signature');
  const forgedEs: SigningKey = { ...generateSigningKey('ES256'), kid: es.kid };
  expectJwtError(() => verifyJwt(signJwt(claims(), forgedEs), opts()), 'signature');
});

test('hostile: an unknown kid, or a kid pinned for another algorithm, is refused', () => {
  expectJwtError(() => verifyJwt(signJwt(claims(), generateSigningKey()), opts()), 'unknown-key');
  // ES256 header on the Ed25519 key's kid.
  const input = `${b64({ alg: 'ES256', kid: ed.kid })}.${b64(claims())}`;
  const sig = cryptoSign('sha256', Buffer.from(input), { key: es.privateKey, dsaEncoding: 'ieee-p1363' });
  expectJwtError(() => verifyJwt(`${input}.${sig.toString('base64url')}`, opts()), 'algorithm');
});

test('hostile: a header carrying its own key (jwk, jku, x5c) is refused', () => {
  for (const extra of [{ jwk: ed.publicKey.export({ format: 'jwk' }) }, { jku: 'http://169.254.169.254/' }, { x5c: ['x'] }, { crit: ['x'] }]) {
    const input = `${b64({ alg: 'EdDSA', kid: ed.kid, ...extra })}.${b64(claims())}`;
    const sig = cryptoSign(null, Buffer.from(input), ed.privateKey).toString('base64url');
    expectJwtError(() => verifyJwt(`${input}.${sig}`, opts()), 'malformed');
  }
});

test('hostile: expired, not yet valid, too long-lived, wrong audience, wrong issuer', () => {
  expectJwtError(() => verifyJwt(signJwt(claims({ exp: NOW - 31 }), ed), opts()), 'expired');
  expectJwtError(() => verifyJwt(signJwt(claims({ nbf: NOW + 120 }), ed), opts()), 'not-yet-valid');
  expectJwtError(() => verifyJwt(signJwt(claims({ iat: NOW + 120, nbf: NOW }), ed), opts()), 'not-yet-valid');
  expectJwtError(() => verifyJwt(signJwt(claims({ exp: NOW + 86400 }), ed), opts()), 'lifetime');
  expectJwtError(() => verifyJwt(signJwt(claims({ aud: 'other-registry' }), ed), opts()), 'audience');
  expectJwtError(() => verifyJwt(signJwt(claims({ aud: ['a', 'b'] }), ed), opts()), 'audience');
  assert.equal(verifyJwt(signJwt(claims({ aud: ['a', 'registry.test'] }), ed), opts()).sub, 'alice');
  expectJwtError(() => verifyJwt(signJwt(claims({ iss: 'evil' }), ed), opts()), 'issuer');
});

test('hostile: a tampered payload fails the signature', () => {
  const token = signJwt(claims(), ed);
  const [h, , s] = token.split('.');
  const tampered = `${h}.${b64(claims({ access: [{ type: 'repository', name: 'bob/secret', actions: ['pull'] }] }))}.${s}`;
  expectJwtError(() => verifyJwt(tampered, opts()), 'signature');
});

test('hostile: garbage tokens are malformed', () => {
  const good = signJwt(claims(), ed);
  const garbage = [
    '', 'a', 'a.b', 'a.b.c.d', '...', 'ukc_x', `${good}=`, `${good}.`, good.replace('.', '..'),
    `${b64([1, 2])}.${b64(claims())}.AAAA`, `${b64('x')}.${b64(claims())}.AAAA`,
    `${Buffer.from('{"alg":"EdDSA",').toString('base64url')}.${b64(claims())}.AAAA`,
    `${b64({ alg: 'EdDSA', kid: ed.kid })}.${b64({ ...claims(), exp: '1' })}.AAAA`,
    `${b64({ alg: 'EdDSA', kid: ed.kid })}.${b64({ ...claims(), admin: true })}.AAAA`,
    `${b64({ alg: 'EdDSA', kid: ed.kid })}.${b64({ ...claims(), access: [{ type: 'repository', name: 'x', actions: 'pull' }] })}.AAAA`,
    `${b64({ alg: 'EdDSA', kid: ed.kid })}.${b64({ ...claims(), exp: 1e300 })}.AAAA`,
    `${b64({ alg: 'EdDSA', kid: ed.kid, typ: 'at+jwt' })}.${b64(claims())}.AAAA`,
    `${Buffer.from([0xff, 0xfe]).toString('base64url')}.${b64(claims())}.AAAA`,
    `${b64({ alg: 'EdDSA', kid: ed.kid })}.${b64(claims())}.A`,
  ];
  for (const g of garbage) expectJwtError(() => verifyJwt(g, opts()), 'malformed');
  // Non-canonical base64url (the unused low bits of the last character set) is refused:
  // one token has one spelling. A 64-byte signature is 86 characters, 4 unused bits.
  const [h, c, s] = good.split('.') as [string, string, string];
  assert.equal(s.length, 86);
  const last = s.charCodeAt(85);
  const flipped = `${s.slice(0, 85)}${String.fromCharCode(last + 1)}`;
  assert.deepEqual(Buffer.from(flipped, 'base64url'), Buffer.from(s, 'base64url'));
  expectJwtError(() => verifyJwt(`${h}.${c}.${flipped}`, opts()), 'malformed');
});

test('hostile: oversized tokens are refused before decoding', () => {
  expectJwtError(() => verifyJwt('a'.repeat(9000), opts()), 'malformed');
  expectJwtError(() => verifyJwt(signJwt(claims(), ed), { ...opts(), maxLength: 100 }), 'malformed');
});

test('signingKeyFrom accepts Ed25519 and P-256 only', () => {
  const { privateKey } = generateKeyPairSync('ed25519');
  assert.equal(signingKeyFrom(privateKey).alg, 'EdDSA');
  assert.equal(signingKeyFrom(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey).alg, 'ES256');
  assert.throws(() => signingKeyFrom(generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey), TypeError);
  assert.throws(() => signingKeyFrom(createSecretKey(Buffer.alloc(32))), TypeError);
});

test('property: the JWT parser and verifier throw only JwtError on random input', () => {
  const good = signJwt(claims(), ed);
  const part = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 60 }),
    fc.constantFrom(...good.split('.')),
    fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null').toString('base64url')),
    fc.record({ alg: fc.constantFrom('none', 'EdDSA', 'ES256', 'HS256'), kid: fc.constantFrom(ed.kid, 'x') }).map(b64),
  );
  fc.assert(
    fc.property(fc.array(part, { minLength: 1, maxLength: 4 }), fc.constantFrom('.', '', '..'), (parts, sep) => {
      const text = parts.join(sep);
      try {
        parseJwt(text);
      } catch (e) {
        if (!(e instanceof JwtError)) throw e;
      }
      try {
        const c = verifyJwt(text, opts());
        // Only the genuine token can pass.
        assert.equal(text, good);
        assert.equal(c.sub, 'alice');
      } catch (e) {
        if (!(e instanceof JwtError)) throw e;
      }
    }),
    { seed: 7, numRuns: 1500 },
  );
});
