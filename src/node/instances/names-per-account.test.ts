// Security case 19 (names): instance names are unique per account, as upstream — two accounts
// may both name an instance `svc` (each resolves its own `svc.internal`, see
// test/e2e/node-tenant-network.test.ts), one account cannot have two.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { AccountStore } from '../../auth/index.js';
import { makeHarness } from '../harness.test-support.js';
import { Errno, localTokenVerifier, tokenAuthenticator } from '../index.js';

test('row 19: instance names are unique per account, not across accounts', async () => {
  const accounts = new AccountStore({ database: new Database(':memory:') });
  accounts.createAccount('alice');
  accounts.createAccount('bob');
  const alice = { authorization: `Bearer ${accounts.createToken('alice').text}` };
  const bob = { authorization: `Bearer ${accounts.createToken('bob').text}` };
  const h = await makeHarness({ authenticate: tokenAuthenticator(localTokenVerifier(accounts)) });
  try {
    const a = await h.call('POST', '/v1/instances', { image: 'alice/httpserver:latest', name: 'svc' }, alice);
    assert.equal(a.body.status, 'success', JSON.stringify(a.body));
    const b = await h.call('POST', '/v1/instances', { image: 'alice/httpserver:latest', name: 'svc' }, bob);
    assert.equal(b.body.status, 'success', 'bob may use the same name in his account');
    assert.equal(b.body.data.instances?.[0]?.private_fqdn, 'svc.internal');
    const again = await h.call('POST', '/v1/instances', { image: 'alice/httpserver:latest', name: 'svc' }, alice);
    assert.equal(again.body.errors?.[0]?.error, Errno.EEXIST, 'a second svc in alice\'s account');
    assert.ok(!JSON.stringify(again.body).includes('bob'));
    // Each sees only their own.
    const seen = await h.call('GET', '/v1/instances/svc', undefined, bob);
    assert.equal(seen.body.data.instances?.[0]?.uuid, b.body.data.instances?.[0]?.uuid);
  } finally {
    await h.cleanup();
  }
});
