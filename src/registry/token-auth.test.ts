// The registry with accounts (createRegistryAuth), over real sockets: the token flow, Basic with a token
// as password, owner namespaces, official/*, the catalog, and security rows 8, 9 and 11 on the
// auth-enabled server.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSigningKey, parseJwt, signJwt, type SigningKey } from '../auth/index.js';
import { digestOf } from '../oci/digest.js';
import { errorCode, pushBlob, pushImage, rawRequest, startTestRegistry, type RawResponse, type TestRegistry } from './testkit.js';
import { createRegistryAuth, ROOT_TOKEN_FILE, type RegistryAuth, type RegistryAuthOptions } from './token-auth.js';

interface AuthRegistry {
  reg: TestRegistry;
  auth: RegistryAuth;
  dir: string;
  close(): Promise<void>;
}

async function startAuthRegistry(
  authOpts: Partial<RegistryAuthOptions> = {},
  limits: Parameters<typeof startTestRegistry>[0] = {},
): Promise<AuthRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-regauth-'));
  let auth: RegistryAuth | undefined;
  const reg = await startTestRegistry({
    ...limits,
    dataDir: join(dir, 'registry'),
    accessFor: (url) => (auth = createRegistryAuth({ publicUrl: url, dataDir: join(dir, 'auth'), rateLimit: false, ...authOpts })),
  });
  const opened = auth as unknown as RegistryAuth;
  return {
    reg,
    auth: opened,
    dir,
    async close() {
      await reg.close();
      opened.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const basic = (user: string, token: string): Record<string, string> => ({
  Authorization: `Basic ${Buffer.from(`${user}:${token}`).toString('base64')}`,
});
const bearer = (token: string): Record<string, string> => ({ Authorization: `Bearer ${token}` });

async function registryToken(base: string, scopes: string[], headers: Record<string, string> = {}): Promise<string> {
  const q = new URLSearchParams({ service: 'ukc-registry' });
  for (const s of scopes) q.append('scope', s);
  const res = await rawRequest(base, 'GET', `/v2/token?${q}`, { headers });
  assert.equal(res.status, 200, res.body.toString());
  return (JSON.parse(res.body.toString()) as { token: string }).token;
}

function denied(res: RawResponse, what: string): void {
  assert.equal(res.status, 403, `${what}: ${res.body.toString()}`);
  assert.equal(errorCode(res), 'DENIED', what);
}

let r: AuthRegistry;
const tok: Record<string, string> = {};
before(async () => {
  r = await startAuthRegistry();
  tok.root = (await readFile(join(r.dir, 'auth', ROOT_TOKEN_FILE), 'utf8')).trim();
  r.auth.accounts.createAccount('alice');
  r.auth.accounts.createAccount('bob');
  tok.alice = r.auth.accounts.createToken('alice').text;
  tok.alicePull = r.auth.accounts.createToken('alice', { scope: 'registry-pull' }).text;
  tok.bob = r.auth.accounts.createToken('bob').text;
});
after(() => r.close());

describe('registry auth: challenge, token flow, Basic', () => {
  it('anonymous GET /v2/ answers 401 with the token-flow challenge', async () => {
    const res = await rawRequest(r.reg.url, 'GET', '/v2/');
    assert.equal(res.status, 401);
    assert.equal(errorCode(res), 'UNAUTHORIZED');
    assert.equal(res.headers['www-authenticate'], `Bearer realm="${r.reg.url}/v2/token",service="ukc-registry"`);
    assert.equal((await rawRequest(r.reg.url, 'GET', '/v2/', { headers: basic('alice', tok.alice!) })).status, 200);
  });

  it('an anonymous route names the scope to ask for', async () => {
    const res = await rawRequest(r.reg.url, 'HEAD', '/v2/alice/x/manifests/latest');
    assert.equal(res.status, 401);
    assert.match(String(res.headers['www-authenticate']), /,scope="repository:alice\/x:pull"$/);
    const push = await rawRequest(r.reg.url, 'POST', '/v2/alice/x/blobs/uploads/');
    assert.match(String(push.headers['www-authenticate']), /,scope="repository:alice\/x:pull,push"$/);
  });

  it('alice pushes alice/x with a registry token from /v2/token (GET and POST), and pulls it back', async () => {
    const jwt = await registryToken(r.reg.url, ['repository:alice/x:pull,push'], basic('alice', tok.alice!));
    const img = await pushImage(r.reg.url, 'alice/x', 'v1', {}, bearer(jwt));
    const got = await rawRequest(r.reg.url, 'GET', '/v2/alice/x/manifests/v1', { headers: bearer(jwt) });
    assert.equal(got.status, 200);
    assert.deepEqual(got.body, img.bytes);
    const form = new URLSearchParams({ grant_type: 'password', username: 'alice', password: tok.alice!, service: 'ukc-registry', scope: 'repository:alice/x:pull' });
    const post = await rawRequest(r.reg.url, 'POST', '/v2/token', {
      body: form.toString(),
      headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    });
    assert.equal(post.status, 200);
    const oauth = JSON.parse(post.body.toString()) as { access_token: string; scope: string };
    assert.equal(oauth.scope, 'repository:alice/x:pull');
    assert.equal((await rawRequest(r.reg.url, 'GET', '/v2/alice/x/manifests/v1', { headers: bearer(oauth.access_token) })).status, 200);
  });

  it('Basic with the API token as password pushes alice/x; bob/x is 403 DENIED and stays empty', async () => {
    await pushImage(r.reg.url, 'alice/x', 'basic', {}, basic('alice', tok.alice!));
    denied(await rawRequest(r.reg.url, 'POST', '/v2/bob/x/blobs/uploads/', { headers: basic('alice', tok.alice!) }), 'start upload');
    denied(
      await rawRequest(r.reg.url, 'PUT', '/v2/bob/x/manifests/v1', { body: '{}', headers: { ...basic('alice', tok.alice!), 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' } }),
      'put manifest',
    );
    // Through the token flow too: the token names bob/x with nothing granted, so 403 rather than a renewal loop.
    const jwt = await registryToken(r.reg.url, ['repository:bob/x:pull,push'], basic('alice', tok.alice!));
    assert.deepEqual(parseJwt(jwt).claims.access, [{ type: 'repository', name: 'bob/x', actions: [] }]);
    denied(await rawRequest(r.reg.url, 'POST', '/v2/bob/x/blobs/uploads/', { headers: bearer(jwt) }), 'start upload with jwt');
    const tags = await rawRequest(r.reg.url, 'GET', '/v2/bob/x/tags/list', { headers: bearer(tok.root!) });
    assert.equal(tags.status, 404, 'nothing appeared under bob/x');
    assert.equal(errorCode(tags), 'NAME_UNKNOWN');
  });

  it('official/*: readable by every account, written by root only; anonymous only when configured', async () => {
    await pushImage(r.reg.url, 'official/base', 'v1', {}, bearer(tok.root!));
    assert.equal((await rawRequest(r.reg.url, 'GET', '/v2/official/base/manifests/v1', { headers: basic('bob', tok.bob!) })).status, 200);
    denied(await rawRequest(r.reg.url, 'POST', '/v2/official/base/blobs/uploads/', { headers: basic('alice', tok.alice!) }), 'alice pushes official');
    assert.equal((await rawRequest(r.reg.url, 'GET', '/v2/official/base/manifests/v1')).status, 401);
    const open = await startAuthRegistry({ anonymousPullOfficial: true });
    try {
      const rootTok = (await readFile(join(open.dir, 'auth', ROOT_TOKEN_FILE), 'utf8')).trim();
      await pushImage(open.reg.url, 'official/base', 'v1', {}, bearer(rootTok));
      assert.equal((await rawRequest(open.reg.url, 'GET', '/v2/official/base/manifests/v1')).status, 200);
      assert.equal((await rawRequest(open.reg.url, 'POST', '/v2/official/base/blobs/uploads/')).status, 401);
    } finally {
      await open.close();
    }
  });

  it('the catalog is for root only', async () => {
    const anon = await rawRequest(r.reg.url, 'GET', '/v2/_catalog');
    assert.equal(anon.status, 401);
    assert.match(String(anon.headers['www-authenticate']), /scope="registry:catalog:\*"/);
    denied(await rawRequest(r.reg.url, 'GET', '/v2/_catalog', { headers: basic('alice', tok.alice!) }), 'alice lists');
    const root = await rawRequest(r.reg.url, 'GET', '/v2/_catalog', { headers: bearer(tok.root!) });
    assert.equal(root.status, 200);
    assert.ok((JSON.parse(root.body.toString()) as { repositories: string[] }).repositories.includes('alice/x'));
    const jwt = await registryToken(r.reg.url, ['registry:catalog:*'], bearer(tok.root!));
    assert.equal((await rawRequest(r.reg.url, 'GET', '/v2/_catalog', { headers: bearer(jwt) })).status, 200);
  });

  it('root token file: written 0600 at first start, kept on the next', async () => {
    const file = join(r.dir, 'auth', ROOT_TOKEN_FILE);
    assert.equal((await stat(file)).mode & 0o777, 0o600);
    assert.equal(r.auth.rootTokenWritten, true);
    const again = createRegistryAuth({ publicUrl: r.reg.url, dataDir: join(r.dir, 'auth') });
    try {
      assert.equal(again.rootTokenWritten, false);
      assert.equal((await readFile(file, 'utf8')).trim(), tok.root);
    } finally {
      again.close();
    }
  });
});

describe('row 8: token and scope bypass on the registry (CVE-2025-24976, CVE-2019-16097)', () => {
  it('a pull-only token pulls but cannot push or delete: 403 DENIED, directly and through the token flow', async () => {
    assert.equal((await rawRequest(r.reg.url, 'GET', '/v2/alice/x/manifests/v1', { headers: basic('alice', tok.alicePull!) })).status, 200);
    denied(await rawRequest(r.reg.url, 'POST', '/v2/alice/x/blobs/uploads/', { headers: basic('alice', tok.alicePull!) }), 'push with Basic');
    denied(await rawRequest(r.reg.url, 'DELETE', '/v2/alice/x/manifests/v1', { headers: bearer(tok.alicePull!) }), 'delete with Bearer');
    const jwt = await registryToken(r.reg.url, ['repository:alice/x:pull,push,delete'], basic('alice', tok.alicePull!));
    assert.deepEqual(parseJwt(jwt).claims.access, [{ type: 'repository', name: 'alice/x', actions: ['pull'] }]);
    denied(await rawRequest(r.reg.url, 'POST', '/v2/alice/x/blobs/uploads/', { headers: bearer(jwt) }), 'push with jwt');
    assert.equal((await rawRequest(r.reg.url, 'GET', '/v2/alice/x/manifests/v1', { headers: bearer(tok.root!) })).status, 200, 'still there');
  });

  it('a token for repo a does not read repo b: 401 insufficient_scope naming b', async () => {
    await pushImage(r.reg.url, 'alice/b', 'v1', {}, basic('alice', tok.alice!));
    const jwt = await registryToken(r.reg.url, ['repository:alice/x:pull'], basic('alice', tok.alice!));
    const res = await rawRequest(r.reg.url, 'GET', '/v2/alice/b/manifests/v1', { headers: bearer(jwt) });
    assert.equal(res.status, 401);
    assert.equal(errorCode(res), 'UNAUTHORIZED');
    assert.match(String(res.headers['www-authenticate']), /scope="repository:alice\/b:pull",error="insufficient_scope"/);
  });

  it('alg none, a forged key reusing the trusted kid, and a foreign audience are 401', async () => {
    const good = parseJwt(await registryToken(r.reg.url, ['repository:alice/x:pull,push'], basic('alice', tok.alice!)));
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const claims = { ...good.claims, access: [{ type: 'repository', name: 'bob/x', actions: ['pull', 'push'] }] };
    const forgedKey: SigningKey = { ...generateSigningKey('EdDSA'), kid: good.header.kid };
    const hostile = {
      'alg none': `${b64({ alg: 'none', kid: good.header.kid })}.${b64(claims)}.`,
      'forged kid': signJwt(claims, forgedKey),
      'foreign audience': signJwt({ ...claims, aud: 'elsewhere' }, forgedKey),
      'HS256 with the public key': `${b64({ alg: 'HS256', kid: good.header.kid })}.${b64(claims)}.AAAA`,
    };
    for (const [name, text] of Object.entries(hostile)) {
      const res = await rawRequest(r.reg.url, 'POST', '/v2/bob/x/blobs/uploads/', { headers: bearer(text) });
      assert.equal(res.status, 401, name);
      assert.match(String(res.headers['www-authenticate']), /error="invalid_token"/, name);
    }
  });
});

describe('row 9: cross-repository leaks on the auth-enabled registry (zot CVE-2024-39897)', () => {
  it('alice mounting from bob/secret gets a plain 202 upload; the blob stays unknown in alice/x', async () => {
    const digest = await pushBlob(r.reg.url, 'bob/secret', 'bob secret bytes', basic('bob', tok.bob!));
    const mount = await rawRequest(r.reg.url, 'POST', `/v2/alice/x/blobs/uploads/?mount=${digest}&from=bob/secret`, { headers: basic('alice', tok.alice!) });
    assert.equal(mount.status, 202);
    assert.match(String(mount.headers.location), /^\/v2\/alice\/x\/blobs\/uploads\//);
    // The same answer whether the source holds the blob or not: nothing is revealed.
    const missing = await rawRequest(r.reg.url, 'POST', `/v2/alice/x/blobs/uploads/?mount=${digestOf('nope').text}&from=bob/none`, {
      headers: basic('alice', tok.alice!),
    });
    assert.equal(missing.status, 202);
    const head = await rawRequest(r.reg.url, 'HEAD', `/v2/alice/x/blobs/${digest}`, { headers: basic('alice', tok.alice!) });
    assert.equal(head.status, 404);
    assert.equal((await rawRequest(r.reg.url, 'HEAD', `/v2/bob/secret/blobs/${digest}`, { headers: basic('alice', tok.alice!) })).status, 403);
    await rawRequest(r.reg.url, 'DELETE', String(mount.headers.location), { headers: basic('alice', tok.alice!) });
    await rawRequest(r.reg.url, 'DELETE', String(missing.headers.location), { headers: basic('alice', tok.alice!) });
    // Root may read bob/secret, so root's mount is real (201): the refusal above is the policy, not a broken mount.
    const rootMount = await rawRequest(r.reg.url, 'POST', `/v2/official/copy/blobs/uploads/?mount=${digest}&from=bob/secret`, { headers: bearer(tok.root!) });
    assert.equal(rootMount.status, 201);
  });
});

describe('row 11: upload-session abuse on the auth-enabled registry', () => {
  it('open sessions per principal are capped: 429 TOOMANYREQUESTS with Retry-After; other principals unaffected', async () => {
    const lim = await startAuthRegistry({}, { limits: { maxUploadsPerPrincipal: 2, retryAfterSeconds: 9 } });
    try {
      const a = lim.auth.accounts.createAccount('alice').name;
      const b = lim.auth.accounts.createAccount('bob').name;
      const ta = lim.auth.accounts.createToken(a).text;
      const tb = lim.auth.accounts.createToken(b).text;
      // Across repositories: the count is per principal, not per repository.
      const locations: string[] = [];
      for (const repo of ['alice/one', 'alice/two']) {
        const res = await rawRequest(lim.reg.url, 'POST', `/v2/${repo}/blobs/uploads/`, { headers: basic(a, ta) });
        assert.equal(res.status, 202);
        locations.push(String(res.headers.location));
      }
      const over = await rawRequest(lim.reg.url, 'POST', '/v2/alice/three/blobs/uploads/', { headers: basic(a, ta) });
      assert.equal(over.status, 429);
      assert.equal(errorCode(over), 'TOOMANYREQUESTS');
      assert.equal(over.headers['retry-after'], '9');
      assert.equal(over.headers.location, undefined, 'a refused start opens nothing');
      assert.equal((await rawRequest(lim.reg.url, 'POST', '/v2/bob/one/blobs/uploads/', { headers: basic(b, tb) })).status, 202);
      assert.equal((await rawRequest(lim.reg.url, 'DELETE', locations[0]!, { headers: basic(a, ta) })).status, 204);
      assert.equal((await rawRequest(lim.reg.url, 'POST', '/v2/alice/three/blobs/uploads/', { headers: basic(a, ta) })).status, 202);
    } finally {
      await lim.close();
    }
  });

  it("a session id from alice's repository is 403 for bob there and 404 BLOB_UPLOAD_UNKNOWN on his own", async () => {
    const start = await rawRequest(r.reg.url, 'POST', '/v2/alice/x/blobs/uploads/', { headers: basic('alice', tok.alice!) });
    const id = String(start.headers['docker-upload-uuid']);
    denied(await rawRequest(r.reg.url, 'PATCH', `/v2/alice/x/blobs/uploads/${id}`, { body: 'x', headers: basic('bob', tok.bob!) }), 'on alice/x');
    const own = await rawRequest(r.reg.url, 'PATCH', `/v2/bob/x/blobs/uploads/${id}`, { body: 'x', headers: basic('bob', tok.bob!) });
    assert.equal(own.status, 404);
    assert.equal(errorCode(own), 'BLOB_UPLOAD_UNKNOWN');
    assert.equal((await rawRequest(r.reg.url, 'GET', `/v2/alice/x/blobs/uploads/${id}`, { headers: basic('alice', tok.alice!) })).status, 204);
    await rawRequest(r.reg.url, 'DELETE', `/v2/alice/x/blobs/uploads/${id}`, { headers: basic('alice', tok.alice!) });
  });

  it('request rate per principal: 429 TOOMANYREQUESTS with Retry-After once the burst is spent', async () => {
    let clock = 1_000_000;
    const rl = await startAuthRegistry({ rateLimit: { ratePerSecond: 1, burst: 3 }, now: () => clock });
    try {
      rl.auth.accounts.createAccount('alice');
      const t = rl.auth.accounts.createToken('alice').text;
      for (let i = 0; i < 3; i++) {
        assert.equal((await rawRequest(rl.reg.url, 'GET', '/v2/alice/x/tags/list', { headers: basic('alice', t) })).status, 404);
      }
      const over = await rawRequest(rl.reg.url, 'GET', '/v2/alice/x/tags/list', { headers: basic('alice', t) });
      assert.equal(over.status, 429);
      assert.equal(errorCode(over), 'TOOMANYREQUESTS');
      assert.equal(over.headers['retry-after'], '1');
      clock += 1000;
      assert.equal((await rawRequest(rl.reg.url, 'GET', '/v2/alice/x/tags/list', { headers: basic('alice', t) })).status, 404);
    } finally {
      await rl.close();
    }
  });
});
