// Every platform operation of the contract (the SDK's list, test/contract) reaches a route on the
// node: served, or EOPNOTSUPP in the envelope. Never "no such endpoint" (404) or a wrong method (405).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { makeHarness } from './harness.test-support.js';
import { Errno } from './index.js';
import { UNSUPPORTED_OPERATIONS } from './unsupported.js';

interface Operation {
  api: string;
  op: string;
  method: string;
  path: string;
}

const operations = JSON.parse(readFileSync(new URL('../../../test/contract/sdk-0.2.0-operations.json', import.meta.url), 'utf8')) as Operation[];
const platform = operations.filter((o) => o.api === 'platform');
const UUID = '5e4b7c1e-9d1a-4c2b-8a6f-0123456789ab';
const concrete = (path: string): string => path.replace('{uuid}', UUID).replace('{name}', 'p1');

test('every platform operation of the SDK has a route on the node: served or EOPNOTSUPP (501), never 404-no-endpoint or 405', async () => {
  assert.equal(platform.length, 89);
  const h = await makeHarness({ gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) } });
  try {
    const unsupported = new Set(UNSUPPORTED_OPERATIONS.flatMap((u) => u.ops.map(([m, p]) => `${m} ${p}`)));
    let answered501 = 0;
    for (const o of platform) {
      const body = o.method === 'GET' ? undefined : o.path.includes('{uuid}') ? {} : [];
      const r = await h.call(o.method, concrete(o.path), body);
      const what = `${o.method} ${o.path} (${o.op}): ${r.status} ${JSON.stringify(r.body.message)}`;
      assert.notEqual(r.status, 405, what);
      assert.doesNotMatch(String(r.body.message ?? ''), /no such endpoint/, what);
      if (unsupported.has(`${o.method} ${o.path}`)) {
        assert.equal(r.status, 501, what);
        assert.equal(r.body.errors?.[0]?.error, Errno.EOPNOTSUPP, what);
        answered501++;
      } else {
        assert.notEqual(r.status, 501, `${what}: served, yet answered not supported`);
      }
    }
    // Every entry of the table is an operation of the contract (no stale or misspelt paths).
    const contract = new Set(platform.map((o) => `${o.method} ${o.path}`));
    for (const key of unsupported) assert.ok(contract.has(key), `${key} is not an operation of the contract`);
    assert.equal(answered501, unsupported.size);
  } finally {
    await h.cleanup();
  }
});

test('literal sub-paths are not taken for names: GET /v1/instances/checkpoints and /v1/services/autoscale are EOPNOTSUPP', async () => {
  const h = await makeHarness({ gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) } });
  try {
    for (const path of ['/v1/instances/checkpoints', '/v1/instances/templates', '/v1/services/autoscale', '/v1/instances/history']) {
      const r = await h.call('GET', path);
      assert.equal(r.status, 501, path);
      assert.equal(r.body.status, 'error');
      assert.match(String(r.body.message), /not supported/);
    }
  } finally {
    await h.cleanup();
  }
});
