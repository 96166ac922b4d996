import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { AccountStore } from './accounts.js';
import { AuthError } from './errors.js';
import { generateSigningKey, parseJwt, signJwt, type SigningKey } from './jwt.js';
import { Policy } from './policy.js';
import { RequestRateLimiter } from './ratelimit.js';
import { createRegistryAuthenticator, type RegistryAuthenticator } from './registry-auth.js';
import type { RepositoryAction } from './scope.js';

const SERVICE = 'registry.test';
const ISSUER = 'ukc-test';
let now = 1_700_000_000_000;
const clock = (): number => now;
const key = generateSigningKey('EdDSA');
const readers: Record<string, string[]> = { 'alice/shared': ['bob'] };

let server: Server;
let base: string;
let auth: RegistryAuthenticator;
let store: AccountStore;
const tok: Record<string, string> = {};

/** A toy registry route table: /v2/<repo>/manifests/<ref> with GET=pull, PUT=push, DELETE=delete. */
function routeActions(method: string): RepositoryAction[] {
  return method === 'PUT' ? ['pull', 'push'] : method === 'DELETE' ? ['delete'] : ['pull'];
}

before(async () => {
  store = new AccountStore({ database: new Database(':memory:'), now: clock });
  store.createAccount('root', { role: 'root' });
  store.createAccount('alice');
  store.createAccount('bob');
  tok.root = store.createToken('root').text;
  tok.alice = store.createToken('alice').text;
  tok.alicePull = store.createToken('alice', { scope: 'registry-pull' }).text;
  tok.bob = store.createToken('bob').text;
  server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/v2/token') return auth.tokenEndpoint(req, res);
      try {
        if (path === '/v2/') {
          const p = await auth.authorizeBase(req);
          res.writeHead(200).end(p.kind);
          return;
        }
        const m = /^\/v2\/(.+)\/manifests\/[^/]+$/.exec(path);
        if (m === null) return void res.writeHead(404).end();
        const p = await auth.authorize(req, { repository: m[1] as string, actions: routeActions(req.method ?? 'GET') });
        res.writeHead(200).end(p.kind === 'anonymous' ? 'anonymous' : p.name);
      } catch (e) {
        if (!(e instanceof AuthError)) return void res.writeHead(500).end();
        const h: Record<string, string> = {};
        if (e.challenge) h['www-authenticate'] = e.challenge;
        if (e.retryAfterSeconds) h['retry-after'] = String(e.retryAfterSeconds);
        res.writeHead(e.status, h).end(JSON.stringify({ errors: [{ code: e.code, message: e.message }] }));
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  auth = createRegistryAuthenticator({
    realm: `${base}/v2/token`,
    service: SERVICE,
    issuer: ISSUER,
    policy: new Policy(),
    accounts: store,
    signingKey: key,
    repositoryReaders: (name) => readers[name],
    rateLimiter: false,
    now: clock,
  });
});

after(() => new Promise<void>((r) => server.close(() => r())));

const basic = (user: string, pass: string): string => `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

async function token(scope: string[], authorization?: string, extra = ''): Promise<Response> {
  const q = new URLSearchParams({ service: SERVICE });
  for (const s of scope) q.append('scope', s);
  return fetch(`${base}/v2/token?${q}${extra}`, { headers: authorization ? { authorization } : {} });
}

async function tokenFor(scope: string[], authorization?: string): Promise<string> {
  const r = await token(scope, authorization);
  assert.equal(r.status, 200);
  const body = (await r.json()) as { token: string; access_token: string; expires_in: number; issued_at: string };
  assert.equal(body.token, body.access_token);
  return body.token;
}

async function call(method: string, repo: string, authorization?: string): Promise<Response> {
  return fetch(`${base}/v2/${repo}/manifests/latest`, { method, headers: authorization ? { authorization } : {} });
}

test('challenge names the realm, the service and the scope', () => {
  assert.equal(
    auth.challenge([{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }]),
    `Bearer realm="${base}/v2/token",service="${SERVICE}",scope="repository:alice/app:pull,push"`,
  );
});

test('anonymous requests get 401 with the challenge for the route scope', async () => {
  const r = await call('PUT', 'alice/app');
  assert.equal(r.status, 401);
  assert.equal(
    r.headers.get('www-authenticate'),
    `Bearer realm="${base}/v2/token",service="${SERVICE}",scope="repository:alice/app:pull,push"`,
  );
  const v2 = await fetch(`${base}/v2/`);
  assert.equal(v2.status, 401);
  assert.match(v2.headers.get('www-authenticate') ?? '', /^Bearer realm="/);
  assert.equal((await fetch(`${base}/v2/`, { headers: { authorization: `Bearer ${tok.alice}` } })).status, 200);
});

test('token flow (skopeo --creds alice:<token>): issue, claims, use', async () => {
  const r = await token(['repository:alice/app:pull,push'], basic('alice', tok.alice as string));
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const body = (await r.json()) as Record<string, unknown>;
  assert.deepEqual(Object.keys(body).sort(), ['access_token', 'expires_in', 'issued_at', 'token']);
  assert.equal(body.expires_in, 300);
  assert.equal(body.issued_at, new Date(Math.floor(now / 1000) * 1000).toISOString());
  const jwt = parseJwt(body.token);
  assert.equal(jwt.header.alg, 'EdDSA');
  assert.equal(jwt.header.kid, key.kid);
  assert.equal(jwt.claims.iss, ISSUER);
  assert.equal(jwt.claims.aud, SERVICE);
  assert.equal(jwt.claims.sub, 'alice');
  assert.equal(jwt.claims.exp - (jwt.claims.iat ?? 0), 300);
  assert.deepEqual(jwt.claims.access, [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }]);
  const bearer = `Bearer ${body.token as string}`;
  assert.equal((await call('PUT', 'alice/app', bearer)).status, 200);
  assert.equal(await (await call('GET', 'alice/app', bearer)).text(), 'alice');
  // Hostile (row 8): the token for repo a does not read repo b; the client is told to get a wider token.
  const other = await call('GET', 'alice/other', bearer);
  assert.equal(other.status, 401);
  assert.match(other.headers.get('www-authenticate') ?? '', /scope="repository:alice\/other:pull",error="insufficient_scope"/);
  // The token names alice/app: what it lacks there was asked for and refused, so asking again cannot help.
  const del = await call('DELETE', 'alice/app', bearer);
  assert.equal(del.status, 403);
  assert.equal(((await del.json()) as { errors: { code: string }[] }).errors[0]?.code, 'DENIED');
});

test('hostile: a token whose grant for a repository is empty is 403 DENIED there, not a renewal loop (row 8)', async () => {
  const t = await tokenFor(['repository:bob/x:pull,push'], basic('alice', tok.alice as string));
  assert.deepEqual(parseJwt(t).claims.access, [{ type: 'repository', name: 'bob/x', actions: [] }]);
  for (const method of ['GET', 'PUT', 'DELETE']) {
    const r = await call(method, 'bob/x', `Bearer ${t}`);
    assert.equal(r.status, 403, method);
    assert.equal(((await r.json()) as { errors: { code: string }[] }).errors[0]?.code, 'DENIED');
  }
});

test('grants are the intersection of what is asked and what the policy allows', async () => {
  const t = await tokenFor(
    ['repository:alice/shared:pull,push', 'repository:alice/app:pull', 'repository:official/base:pull,delete', 'registry:catalog:*', 'plugin:x:pull'],
    basic('bob', tok.bob as string),
  );
  assert.deepEqual(parseJwt(t).claims.access, [
    { type: 'repository', name: 'alice/shared', actions: ['pull'] },
    { type: 'repository', name: 'alice/app', actions: [] },
    { type: 'repository', name: 'official/base', actions: ['pull'] },
  ]);
  const rootToken = await tokenFor(['registry:catalog:*'], `Bearer ${tok.root}`);
  assert.deepEqual(parseJwt(rootToken).claims.access, [{ type: 'registry', name: 'catalog', actions: ['*'] }]);
  // Anonymous gets a token with nothing in it (the spec's answer), never an error.
  const anon = await tokenFor(['repository:alice/app:pull']);
  assert.deepEqual(parseJwt(anon).claims.access, []);
  assert.equal(parseJwt(anon).claims.sub, 'anonymous');
  assert.equal((await call('GET', 'alice/app', `Bearer ${anon}`)).status, 401);
});

test('hostile: a pull-only API token cannot push, directly or through the token endpoint (row 8)', async () => {
  assert.equal((await call('GET', 'alice/app', `Bearer ${tok.alicePull}`)).status, 200);
  const direct = await call('PUT', 'alice/app', `Bearer ${tok.alicePull}`);
  assert.equal(direct.status, 403);
  assert.equal(((await direct.json()) as { errors: { code: string }[] }).errors[0]?.code, 'DENIED');
  assert.equal((await call('DELETE', 'alice/app', basic('alice', tok.alicePull as string))).status, 403);
  const t = await tokenFor(['repository:alice/app:pull,push,delete'], basic('alice', tok.alicePull as string));
  assert.deepEqual(parseJwt(t).claims.access, [{ type: 'repository', name: 'alice/app', actions: ['pull'] }]);
});

test('API tokens work directly as Bearer and as the Basic password; the username must match', async () => {
  assert.equal(await (await call('PUT', 'alice/app', `Bearer ${tok.alice}`)).text(), 'alice');
  assert.equal(await (await call('PUT', 'alice/app', basic('alice', tok.alice as string))).text(), 'alice');
  assert.equal((await call('PUT', 'alice/app', basic('bob', tok.alice as string))).status, 401);
  assert.equal((await token(['repository:alice/app:pull'], basic('bob', tok.alice as string))).status, 401);
  assert.equal((await call('PUT', 'alice/app', `Bearer ${tok.bob}`)).status, 403);
  const temp = store.createToken('alice');
  assert.equal((await call('GET', 'alice/app', `Bearer ${temp.text}`)).status, 200);
  store.revokeToken(temp.info.id);
  assert.equal((await call('GET', 'alice/app', `Bearer ${temp.text}`)).status, 401);
  assert.equal((await token([], `Bearer ${temp.text}`)).status, 401);
});

test('hostile: garbage and oversized Authorization headers are 401, never 500 or anonymous', async () => {
  const garbage = [
    'Bearer', 'Bearer ', 'Bearer a b', 'Bearer !!!', 'Basic ###', 'Basic', `Basic ${Buffer.from('nocolon').toString('base64')}`,
    `Basic ${Buffer.from('alice:').toString('base64')}`, `Basic ${Buffer.from([0xff, 0x3a, 0x41]).toString('base64')}`,
    'Basic YWxpY2U6eA', 'Digest abc', 'Bearer ukc_', `Bearer ${'a'.repeat(10_000)}`, `Bearer ${tok.alice as string}x`,
    `bearer  ${tok.alice as string}`, 'Bearer eyJhbGciOiJub25lIn0.e30.',
  ];
  for (const g of garbage) {
    const r = await call('GET', 'official/base', g);
    assert.equal(r.status, 401, g.slice(0, 40));
    assert.match(r.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    assert.equal((await token(['repository:official/base:pull'], g)).status, 401, g.slice(0, 40));
  }
  // Node itself refuses headers beyond its own limit; ours answers 401 below that.
  const big = await call('GET', 'official/base', `Bearer ${'a'.repeat(9000)}`);
  assert.equal(big.status, 401);
});

test('hostile: forged, expired and foreign-audience registry tokens are refused (row 8)', async () => {
  const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
  const claims = {
    iss: ISSUER, sub: 'alice', aud: SERVICE, exp: Math.floor(now / 1000) + 60, iat: Math.floor(now / 1000),
    access: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }],
  };
  const none = `${b64({ alg: 'none', kid: key.kid })}.${b64(claims)}.`;
  const noneSig = `${b64({ alg: 'none', kid: key.kid })}.${b64(claims)}.AAAA`;
  const forgedKey: SigningKey = { ...generateSigningKey('EdDSA'), kid: key.kid };
  const forged = signJwt(claims, forgedKey);
  const foreignAud = signJwt({ ...claims, aud: 'other.registry' }, key);
  const foreignIss = signJwt({ ...claims, iss: 'someone' }, key);
  for (const t of [none, noneSig, forged, foreignAud, foreignIss]) {
    assert.equal((await call('GET', 'alice/app', `Bearer ${t}`)).status, 401);
  }
  const genuine = signJwt(claims, key);
  assert.equal((await call('GET', 'alice/app', `Bearer ${genuine}`)).status, 200);
  // A registry token cannot be used to mint tokens.
  assert.equal((await token(['repository:alice/app:pull'], `Bearer ${genuine}`)).status, 401);
  now += 120_000; // past exp + skew
  try {
    assert.equal((await call('GET', 'alice/app', `Bearer ${genuine}`)).status, 401);
  } finally {
    now -= 120_000;
  }
});

test('token endpoint: strict parameters and methods', async () => {
  const alice = basic('alice', tok.alice as string);
  const wrongService = await fetch(`${base}/v2/token?service=evil&scope=repository:alice/app:pull`, { headers: { authorization: alice } });
  assert.equal(wrongService.status, 400);
  assert.equal((await fetch(`${base}/v2/token?service=${SERVICE}&service=${SERVICE}`)).status, 400);
  assert.equal((await token(['repository:alice/../x:pull'], alice)).status, 400);
  assert.equal((await token(['repository:alice/app:admin'], alice)).status, 400);
  assert.equal((await token(['repository:alice/app:pull'], alice, '&account=bob')).status, 401);
  assert.equal((await token(['repository:alice/app:pull'], alice, '&account=alice')).status, 200);
  const bad = await token([], basic('alice', 'ukc_' + 'a'.repeat(32) + '_' + 'b'.repeat(43)));
  assert.equal(bad.status, 401);
  assert.match(bad.headers.get('www-authenticate') ?? '', /^Basic realm=/);
  const body = (await bad.json()) as { errors: { code: string; message: string }[] };
  assert.equal(body.errors[0]?.code, 'UNAUTHORIZED');
  assert.equal(JSON.stringify(body).includes('bbbb'), false, 'no secret echoed');
  assert.equal((await fetch(`${base}/v2/token`, { method: 'PUT' })).status, 405);
  assert.equal((await fetch(`${base}/v2/token?${'scope=x&'.repeat(2000)}`)).status, 414);
});

test('token endpoint: OAuth2 password grant by POST form', async () => {
  const form = (fields: Record<string, string>): RequestInit => ({
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  });
  const ok = await fetch(`${base}/v2/token`, form({
    grant_type: 'password', service: SERVICE, client_id: 'containerd', username: 'alice', password: tok.alice as string,
    scope: 'repository:alice/app:pull,push repository:bob/x:pull',
  }));
  assert.equal(ok.status, 200);
  const body = (await ok.json()) as { access_token: string; scope: string };
  assert.equal(body.scope, 'repository:alice/app:pull,push');
  assert.equal(parseJwt(body.access_token).claims.sub, 'alice');
  const wrong = await fetch(`${base}/v2/token`, form({ grant_type: 'password', service: SERVICE, username: 'bob', password: tok.alice as string }));
  assert.equal(wrong.status, 401);
  assert.equal((await fetch(`${base}/v2/token`, form({ grant_type: 'refresh_token', refresh_token: 'x' }))).status, 400);
  assert.equal((await fetch(`${base}/v2/token`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status, 415);
  assert.equal((await fetch(`${base}/v2/token`, form({ grant_type: 'password', scope: 'x'.repeat(20_000) }))).status, 413);
});

test('mount decision and catalog through the adapter (row 9)', async () => {
  const alice = auth.authenticate({ authorization: `Bearer ${tok.alice}` });
  const bob = auth.authenticate({ authorization: `Bearer ${tok.bob}` });
  assert.equal(await auth.mountDecision(alice, 'alice/app', 'bob/secret'), 'upload');
  assert.equal(await auth.mountDecision(bob, 'bob/app', 'alice/shared'), 'mount');
  assert.equal(await auth.mountDecision(bob, 'bob/app', 'alice/app'), 'upload');
  assert.equal(auth.mayListCatalog(alice), false);
  assert.equal(auth.mayListCatalog(auth.authenticate({ authorization: `Bearer ${tok.root}` })), true);
  assert.equal(auth.authenticate({}).kind, 'anonymous');
  assert.throws(() => auth.authenticate({ authorization: 'Bearer nope' }), (e: unknown) => e instanceof AuthError && e.code === 'UNAUTHORIZED');
});

test('per-principal rate limit answers 429 with Retry-After', async () => {
  let t = 0;
  const limited = createRegistryAuthenticator({
    realm: 'http://127.0.0.1:1/v2/token', service: SERVICE, issuer: ISSUER, policy: new Policy(), accounts: store,
    rateLimiter: new RequestRateLimiter({ ratePerSecond: 1, burst: 2, now: () => t }),
  });
  const req = { headers: { authorization: `Bearer ${tok.alice}` }, socket: { remoteAddress: '127.0.0.1' } };
  await limited.authorize(req, { repository: 'alice/app', actions: ['pull'] });
  await limited.authorize(req, { repository: 'alice/app', actions: ['pull'] });
  await assert.rejects(
    limited.authorize(req, { repository: 'alice/app', actions: ['pull'] }),
    (e: unknown) => e instanceof AuthError && e.status === 429 && e.retryAfterSeconds === 1,
  );
  // bob has his own bucket
  await limited.authorize({ headers: { authorization: `Bearer ${tok.bob}` } }, { repository: 'bob/app', actions: ['push'] });
  t += 1000;
  await limited.authorize(req, { repository: 'alice/app', actions: ['pull'] });
});

test('a verifying-only authenticator (a node pinning the control plane key) accepts its tokens', async () => {
  const cpToken = await tokenFor(['repository:alice/app:pull'], `Bearer ${tok.alice}`);
  const node = createRegistryAuthenticator({
    realm: 'http://127.0.0.1:1/v2/token', service: SERVICE, issuer: ISSUER, policy: new Policy(),
    trustedKeys: [{ kid: key.kid, alg: key.alg, publicKey: key.publicKey }], rateLimiter: false, now: clock,
  });
  const p = await node.authorize({ headers: { authorization: `Bearer ${cpToken}` } }, { repository: 'alice/app', actions: ['pull'] });
  assert.equal(p.kind, 'grant');
  // Without an account store, API tokens are not accepted there.
  await assert.rejects(node.authorize({ headers: { authorization: `Bearer ${tok.alice}` } }, { repository: 'alice/app', actions: ['pull'] }), AuthError);
  assert.throws(() => createRegistryAuthenticator({ realm: 'http://x/"', service: SERVICE, issuer: ISSUER, policy: new Policy() }), TypeError);
});

test('property: authenticate throws only AuthError on random Authorization headers', () => {
  const header = fc.oneof(
    fc.string({ unit: 'binary', maxLength: 120 }),
    fc.tuple(fc.constantFrom('Basic ', 'Bearer ', 'bearer ', 'BASIC '), fc.string({ maxLength: 120 })).map(([a, b]) => a + b),
    fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 60 })).map(([u, p]) => basic(u, p)),
    fc.nat({ max: 86 }).map((n) => `Bearer ${(tok.alice as string).slice(0, n)}`),
  );
  fc.assert(
    fc.property(header, (h) => {
      try {
        const p = auth.authenticate({ authorization: h });
        assert.notEqual(p.kind, 'anonymous', 'a present credential never falls back to anonymous');
      } catch (e) {
        if (!(e instanceof AuthError && e.code === 'UNAUTHORIZED')) throw e;
      }
    }),
    { seed: 4242, numRuns: 1000 },
  );
});
