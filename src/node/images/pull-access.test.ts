// Security case 14 for images: the node's image cache is shared by every tenant, so instance
// create checks the caller's right to pull the named repository before resolving it. Bob naming
// an image alice already has on the node gets exactly the answer of a name that does not exist.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { AccountStore, accountPrincipal, Policy } from '../../auth/index.js';
import { makeHarness, type Envelope, type Harness } from '../harness.test-support.js';
import { settle } from '../test-doubles.test-support.js';
import { Errno, localTokenVerifier, tokenAuthenticator } from '../index.js';
import { imagePullCheck } from './pull-access.js';
import { locateImage, type ImageHostRules } from './local.js';

const RULES: ImageHostRules = {
  centralUrl: 'http://central.test:5000',
  registryHost: '127.0.0.1:7001',
  allowedRegistries: ['https://other.example'],
};
const locate = (url: string) => locateImage(url, RULES);

let h: Harness;
let accounts: AccountStore;
const as: Record<string, Record<string, string>> = {};

function comparable(r: { status: number; body: Envelope }, selector: string): unknown {
  const text = JSON.stringify({ ...r.body, op_time_us: 0 }).split(selector).join('<image>');
  return { status: r.status, body: JSON.parse(text) as unknown };
}

before(async () => {
  accounts = new AccountStore({ database: new Database(':memory:') });
  accounts.createAccount('root', { role: 'root' });
  accounts.createAccount('alice');
  accounts.createAccount('bob');
  const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });
  as.root = bearer(accounts.createToken('root').text);
  as.alice = bearer(accounts.createToken('alice').text);
  as.bob = bearer(accounts.createToken('bob').text);
  const policy = new Policy();
  h = await makeHarness({
    authenticate: tokenAuthenticator(localTokenVerifier(accounts)),
    policy,
    mayPullImage: imagePullCheck(locate, (p, repository) => policy.authorize(p, 'pull', { kind: 'repository', name: repository }).allow),
  });
  // What is "in the node's cache": the fake resolver answers these names.
  h.resolver.add('official/nginx:latest', { digestRef: `official/nginx@sha256:${'b'.repeat(64)}`, config: {} });
  h.resolver.add('library/python:3.12', { digestRef: `library/python@sha256:${'c'.repeat(64)}`, config: {} });
});

after(async () => {
  await h.cleanup();
  accounts.close();
});

describe('instance create checks the image against the pull policy', () => {
  it('bob naming alice\'s cached image answers exactly like a missing image, and nothing is resolved', async () => {
    const before = h.resolver.requests.length;
    for (const [real, ghost] of [
      ['alice/httpserver:latest', 'alice/no-such-image:latest'],
      [`alice/httpserver@sha256:${'a'.repeat(64)}`, `alice/httpserver@sha256:${'9'.repeat(64)}`],
    ] as const) {
      const a = await h.call('POST', '/v1/instances', { image: real, name: 'stolen' }, as.bob);
      const b = await h.call('POST', '/v1/instances', { image: ghost, name: 'stolen' }, as.bob);
      assert.equal(a.status, 404, JSON.stringify(a.body));
      assert.equal(a.body.errors?.[0]?.error ?? a.body.status, Errno.ENOENT, JSON.stringify(a.body));
      assert.deepEqual(comparable(a, real), comparable(b, ghost));
      // The object form (with a pull policy) is checked too.
      const c = await h.call('POST', '/v1/instances', { image: { url: real, pull_policy: 'never' }, name: 'stolen' }, as.bob);
      assert.equal(c.status, 404);
    }
    assert.equal(h.resolver.requests.length, before, 'a refused image is never resolved (no pull, no timing signal)');
    const mine = await h.call('GET', '/v1/instances', undefined, as.bob);
    assert.deepEqual(mine.body.data.instances ?? [], []);
  });

  it('the owner and root may run it; every account may run official/* and library/*', async () => {
    const a = await h.call('POST', '/v1/instances', { image: 'alice/httpserver:latest', name: 'mine', autostart: false }, as.alice);
    assert.equal(a.body.status, 'success', JSON.stringify(a.body));
    const r = await h.call('POST', '/v1/instances', { image: 'alice/httpserver:latest', name: 'ops', autostart: false }, as.root);
    assert.equal(r.body.status, 'success', JSON.stringify(r.body));
    for (const image of ['official/nginx:latest', 'library/python:3.12']) {
      const b = await h.call('POST', '/v1/instances', { image, autostart: false }, as.bob);
      assert.equal(b.body.status, 'success', `${image}: ${JSON.stringify(b.body)}`);
    }
    await settle();
  });
});

describe('imagePullCheck', () => {
  const bob = accountPrincipal('bob');
  const seen: string[] = [];
  const check = imagePullCheck(locate, (p, repo) => {
    seen.push(repo);
    return repo.startsWith(`${p.name}/`);
  });

  it('asks about the repository the reference maps to, on the central and on this node', () => {
    assert.equal(check(bob, 'bob/app:1'), true);
    assert.equal(check(bob, 'central.test:5000/alice/app:1'), false);
    assert.equal(check(bob, '127.0.0.1:7001/alice/app'), false);
    assert.deepEqual(seen, ['bob/app', 'alice/app', 'alice/app']);
  });

  it('root is never refused; allowed foreign registries and unlocatable references are left to the resolver', () => {
    seen.length = 0;
    assert.equal(check(accountPrincipal('root', 'root'), 'alice/app'), true);
    assert.equal(check(bob, 'other.example/alice/app'), true);
    assert.equal(check(bob, 'evil.example/alice/app'), true);
    assert.equal(check(bob, 'NOT A REF'), true);
    assert.deepEqual(seen, []);
  });
});
