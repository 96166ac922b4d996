import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRouter, itemFailed, itemOk, type ApiRequest, type Route } from './router.js';
import { ApiError as NodeError, Errno } from './errors.js';
import { accountPrincipal } from '../auth/index.js';

const singleTenantAuthenticator = () => accountPrincipal('local', 'root');
import * as v from './validate.js';

const itemSchema = v.array(v.selector({}), { maxItems: 10 });
const routes: Route[] = [
  {
    method: 'PUT', pattern: '/v1/things/poke', collection: 'things',
    handler: async ({ body }) => ({
      items: itemSchema.parse(body).map((s) =>
        s.name === 'missing' ? itemFailed(new NodeError(Errno.ENOENT, 'thing not found'), s) : itemOk({ name: s.name ?? s.uuid }),
      ),
    }),
  },
  {
    method: 'GET', pattern: '/v1/things/{uuid}', collection: 'things',
    handler: async ({ params, query }) => ({ items: [itemOk({ uuid: params.uuid, details: query.get('details') })] }),
  },
  {
    method: 'GET', pattern: '/v1/files/{path*}', collection: 'files',
    handler: async ({ params }) => ({ items: [itemOk({ path: params.path })] }),
  },
  {
    method: 'GET', pattern: '/v1/boom', collection: 'things',
    handler: async () => { throw new Error('secret database path /var/x'); },
  },
];

const router = createRouter({ routes, authenticate: singleTenantAuthenticator, maxBodyBytes: 256 });
async function call(req: ApiRequest): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await router.handle(req);
  return { status: res.status, body: JSON.parse(res.body) as Record<string, unknown> };
}

test('batch success: envelope with per-item status and op_time_us', async () => {
  const r = await call({ method: 'PUT', url: '/v1/things/poke', body: JSON.stringify([{ name: 'a' }, { name: 'b' }]) });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'success');
  assert.deepEqual(r.body.data, { things: [{ status: 'success', name: 'a' }, { status: 'success', name: 'b' }] });
  assert.equal(typeof r.body.op_time_us, 'number');
  assert.equal(r.body.errors, undefined);
});

test('partial_success lists the failing items with errno and http status', async () => {
  const r = await call({ method: 'PUT', url: '/v1/things/poke', body: JSON.stringify([{ name: 'a' }, { name: 'missing' }]) });
  assert.equal(r.status, 200);
  assert.equal(r.body.status, 'partial_success');
  const items = (r.body.data as { things: Record<string, unknown>[] }).things;
  assert.deepEqual(items[1], { status: 'error', name: 'missing', message: 'thing not found', error: 2 });
  assert.deepEqual(r.body.errors, [{ status: 404, name: 'missing', message: 'thing not found', error: 2 }]);
});

test('all items failing is an error with the errno status', async () => {
  const r = await call({ method: 'PUT', url: '/v1/things/poke', body: JSON.stringify([{ name: 'missing' }]) });
  assert.equal(r.status, 404);
  assert.equal(r.body.status, 'error');
  assert.equal(r.body.message, 'thing not found');
});

test('bad JSON, unknown fields and bad types are EINVAL/400', async () => {
  for (const body of ['{nope', JSON.stringify([{ name: 'a', extra: 1 }]), JSON.stringify([{ name: 3 }]), JSON.stringify({ name: 'a' })]) {
    const r = await call({ method: 'PUT', url: '/v1/things/poke', body });
    assert.equal(r.status, 400, body);
    assert.equal(r.body.status, 'error');
    assert.deepEqual((r.body.errors as { error: number }[])[0]!.error, Errno.EINVAL);
    assert.deepEqual(r.body.data, { things: [] });
  }
});

test('body over the cap is 413 EFBIG', async () => {
  const r = await call({ method: 'PUT', url: '/v1/things/poke', body: JSON.stringify([{ name: 'x'.repeat(300) }]) });
  assert.equal(r.status, 413);
  assert.equal((r.body.errors as { error: number }[])[0]!.error, Errno.EFBIG);
});

test('routing: params, greedy params, 404 and 405', async () => {
  const one = await call({ method: 'GET', url: '/v1/things/abc?details=false' });
  assert.deepEqual(one.body.data, { things: [{ status: 'success', uuid: 'abc', details: 'false' }] });
  const greedy = await call({ method: 'GET', url: '/v1/files/alice/http%3Aserver:latest' });
  assert.deepEqual(greedy.body.data, { files: [{ status: 'success', path: 'alice/http:server:latest' }] });
  assert.equal((await call({ method: 'GET', url: '/v1/nothing' })).status, 404);
  const wrongMethod = await call({ method: 'DELETE', url: '/v1/things/poke' });
  assert.equal(wrongMethod.status, 405);
  assert.equal(wrongMethod.body.status, 'error');
});

test('unknown errors are 500 without their message', async () => {
  const r = await call({ method: 'GET', url: '/v1/boom' });
  assert.equal(r.status, 500);
  assert.equal(r.body.message, 'internal error');
  assert.ok(!JSON.stringify(r.body).includes('secret'));
});

test('authentication is consulted before any handler', async () => {
  const denyAll = createRouter({ routes, authenticate: () => undefined, maxBodyBytes: 256 });
  assert.equal((await denyAll.handle({ method: 'GET', url: '/v1/things/x' })).status, 401);
});

test('node:http listener streams the body with the cap and answers GET bodies', async (t) => {
  const server = createServer(router.listener);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const send = (method: string, path: string, body: string, chunked = false) =>
    new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path, headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) } }, (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }));
      });
      req.on('error', reject);
      req.end(body);
    });
  const ok = await send('PUT', '/v1/things/poke', JSON.stringify([{ uuid: 'u1' }]));
  assert.equal(ok.status, 200);
  assert.deepEqual(ok.body.data, { things: [{ status: 'success', name: 'u1' }] });
  const big = await send('PUT', '/v1/things/poke', JSON.stringify([{ name: 'y'.repeat(1000) }]));
  assert.equal(big.status, 413);
  const bigChunked = await send('PUT', '/v1/things/poke', JSON.stringify([{ name: 'y'.repeat(1000) }]), true);
  assert.equal(bigChunked.status, 413);
});

test('an internal error is logged with the request id and answered without its message', async () => {
  const logged: Record<string, unknown>[] = [];
  const r = createRouter({ routes, authenticate: singleTenantAuthenticator, maxBodyBytes: 256, logger: { error: (fields) => logged.push(fields) } });
  const res = await r.handle({ method: 'GET', url: '/v1/boom', headers: { 'x-request-id': 'req-42' } });
  assert.equal(res.status, 500);
  assert.equal(res.headers['x-request-id'], 'req-42');
  assert.ok(!res.body.includes('secret'));
  assert.equal(logged.length, 1);
  assert.equal(logged[0]!.requestId, 'req-42');
  assert.match(String((logged[0]!.err as Error).message), /secret database path/);
  // A request id that is not a plain token is replaced (it would end up in logs).
  const other = await r.handle({ method: 'GET', url: '/v1/boom', headers: { 'x-request-id': 'a b\nc' } });
  assert.match(other.headers['x-request-id'] ?? '', /^[0-9a-f-]{36}$/);
});

test('a wrong method is 405 EINVAL with Allow; literal segments win over {uuid}; domain errors are mapped', async () => {
  const r = createRouter({
    routes: [
      ...routes,
      { method: 'GET', pattern: '/v1/things/wait', collection: 'things', handler: async () => ({ items: [itemOk({ literal: true })] }) },
      { method: 'GET', pattern: '/v1/odd', collection: 'things', handler: async () => { throw new RangeError('domain'); } },
    ],
    authenticate: singleTenantAuthenticator,
    maxBodyBytes: 256,
    mapError: (err) => (err instanceof RangeError ? new NodeError(Errno.EEXIST, 'mapped') : undefined),
    logger: { error: () => assert.fail('nothing to log: a mapped client error is no 5xx') },
  });
  const wrong = await r.handle({ method: 'POST', url: '/v1/things/abc' });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.allow, 'GET');
  assert.equal((JSON.parse(wrong.body) as { errors: { error: number }[] }).errors[0]!.error, Errno.EINVAL);
  const lit = JSON.parse((await r.handle({ method: 'GET', url: '/v1/things/wait' })).body) as { data: { things: unknown[] } };
  assert.deepEqual(lit.data.things, [{ status: 'success', literal: true }]);
  const odd = await r.handle({ method: 'GET', url: '/v1/odd' });
  assert.equal(odd.status, 409);
  assert.equal((JSON.parse(odd.body) as { message: string }).message, 'mapped');
});
