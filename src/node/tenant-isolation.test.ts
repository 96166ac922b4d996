// Security case 14 (tenant isolation on the platform API) with real accounts: the node API behind
// `tokenAuthenticator(localTokenVerifier(accounts))` (src/auth's API tokens and policy). Bob gets ENOENT for every operation on
// alice's instances — the same answer, byte for byte apart from timings and ids, as for a name or
// uuid that does not exist. The runtime is the node API's own test double.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { AccountStore } from '../auth/index.js';
import { makeHarness, type Envelope, type Harness } from './harness.test-support.js';
import { settle } from './test-doubles.test-support.js';
import { Errno, localTokenVerifier, tokenAuthenticator } from './index.js';

const IMG = 'alice/httpserver:latest';
const GHOST_UUID = '00000000-0000-4000-8000-000000000000';

let h: Harness;
let accounts: AccountStore;
const as: Record<string, Record<string, string>> = {};
let aliceUuid: string;

/** An answer with what legitimately differs between two requests (time, the echoed selector) blanked. */
function comparable(r: { status: number; body: Envelope }, selector: string): unknown {
  const text = JSON.stringify({ ...r.body, op_time_us: 0 }).split(selector).join('<selector>');
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
  as.aliceRegistry = bearer(accounts.createToken('alice', { scope: 'registry' }).text);
  h = await makeHarness({ authenticate: tokenAuthenticator(localTokenVerifier(accounts)) });
  const created = await h.call('POST', '/v1/instances', { image: IMG, name: 'secret' }, as.alice);
  assert.equal(created.body.status, 'success', JSON.stringify(created.body));
  aliceUuid = String(created.body.data.instances?.[0]?.uuid);
  await settle();
});

after(async () => {
  await h.cleanup();
  accounts.close();
});

describe('row 14: tenant isolation on the node API with accounts and tokens', () => {
  it('alice sees and controls her instance; root sees it too', async () => {
    const mine = await h.call('GET', `/v1/instances/${aliceUuid}`, undefined, as.alice);
    assert.equal(mine.body.data.instances?.[0]?.state, 'running');
    const all = await h.call('GET', '/v1/instances', undefined, as.root);
    assert.deepEqual(all.body.data.instances?.map((i) => i.uuid), [aliceUuid]);
  });

  it('bob: get, start, stop, log, metrics, update and delete of alice\'s instance answer exactly as for a missing one', async () => {
    const ops = [
      ['GET', ''],
      ['PUT', '/start'],
      ['PUT', '/stop'],
      ['GET', '/log'],
      ['GET', '/metrics'],
      ['PATCH', ''],
      ['DELETE', ''],
    ] as const;
    for (const [method, suffix] of ops) {
      // Single form, by uuid and by name.
      for (const [real, ghost] of [
        [aliceUuid, GHOST_UUID],
        ['secret', 'no-such-name'],
      ] as const) {
        const a = await h.call(method, `/v1/instances/${real}${suffix}`, undefined, as.bob);
        const b = await h.call(method, `/v1/instances/${ghost}${suffix}`, undefined, as.bob);
        assert.equal(a.status, 404, `${method} ${suffix} ${real}`);
        assert.equal(a.body.errors?.[0]?.error, Errno.ENOENT);
        assert.deepEqual(comparable(a, real), comparable(b, ghost), `${method} ${suffix}`);
      }
      // Batch form, by name.
      const a = await h.call(method, `/v1/instances${suffix}`, [{ name: 'secret' }], as.bob);
      const b = await h.call(method, `/v1/instances${suffix}`, [{ name: 'no-such-name' }], as.bob);
      assert.deepEqual(comparable(a, 'secret'), comparable(b, 'no-such-name'), `batch ${method} ${suffix}`);
      assert.equal(a.body.errors?.[0]?.error ?? a.body.data.instances?.[0]?.error, Errno.ENOENT, `batch ${method} ${suffix}`);
    }
  });

  it('bob lists nothing of alice, and alice\'s instance is untouched by all of that', async () => {
    const list = await h.call('GET', '/v1/instances', undefined, as.bob);
    assert.equal(list.status, 200);
    assert.deepEqual(list.body.data.instances ?? [], []);
    const still = await h.call('GET', `/v1/instances/${aliceUuid}`, undefined, as.alice);
    assert.equal(still.body.data.instances?.[0]?.state, 'running');
    assert.equal(still.body.data.instances?.[0]?.name, 'secret');
  });

  it('no token, a wrong token, or a registry-only token is 401 on the platform API', async () => {
    for (const headers of [{}, { authorization: `${as.alice!.authorization!}x` }, { authorization: 'Basic YWxpY2U6eA==' }, as.aliceRegistry!]) {
      const r = await h.call('GET', '/v1/instances', undefined, headers);
      assert.equal(r.status, 401, JSON.stringify(headers).slice(0, 60));
    }
  });

  it('alice deletes her own instance; afterwards she too gets ENOENT', async () => {
    const del = await h.call('DELETE', `/v1/instances/${aliceUuid}`, undefined, as.alice);
    assert.equal(del.body.status, 'success', JSON.stringify(del.body));
    await settle();
    const gone = await h.call('GET', `/v1/instances/${aliceUuid}`, undefined, as.alice);
    assert.equal(gone.status, 404);
  });
});
