// Request logging: one line per request, the id in the response and the line, causes of 500s, no stacks for 4xx.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request as httpRequest, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createRouter, itemFailed, itemOk } from '../api/index.js';
import { singleTenantAuthenticator } from '../node/auth.js';
import { Errno, NodeError } from '../node/errors.js';
import { openStores } from '../registry/server.js';
import { pushBlob, rawRequest, startTestRegistry } from '../registry/testkit.js';
import { createLogger, reportInternalError, requestIdFrom, setRouteTemplate, withRequestLogging, type FinishedRequest } from './index.js';

interface Line {
  level: string;
  msg: string;
  reqId?: string;
  status?: number;
  route?: string;
  role?: string;
  err?: { type?: string; message?: string; stack?: string };
}

function capture(): { lines: Line[]; logger: ReturnType<typeof createLogger> } {
  const stream = new PassThrough();
  const lines: Line[] = [];
  let buf = '';
  stream.on('data', (c: Buffer) => {
    buf += c.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, nl)) as Line);
      buf = buf.slice(nl + 1);
    }
  });
  return { lines, logger: createLogger({ level: 'debug', destination: stream, base: { role: 'test' } }) };
}

async function serve(handler: RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(() => r())) };
}

/** Lines arrive through a stream: wait until `n` are there. */
async function settle(lines: Line[], n: number): Promise<void> {
  for (let i = 0; i < 100 && lines.length < n; i++) await new Promise((r) => setTimeout(r, 10));
}

test('the node router: a 500 is logged once, at error, with the request id and its cause; the client sees neither', async () => {
  const { lines, logger } = capture();
  const router = createRouter({
    routes: [
      { method: 'POST', pattern: '/v1/boom/{id}', handler: async () => { throw new TypeError('disk said no'); } },
      { method: 'GET', pattern: '/v1/missing', handler: async () => { throw new NodeError(Errno.ENOENT, 'no such thing'); } },
    ],
    authenticate: singleTenantAuthenticator,
    maxBodyBytes: 1024,
  });
  const finished: FinishedRequest[] = [];
  const srv = await serve(withRequestLogging(router.listener, { logger, onFinished: (f) => finished.push(f) }));
  try {
    // A body read through 'data'/'end' events: the cause is reported after 'end', outside the handler's first tick.
    const res = await rawRequest(srv.url, 'POST', '/v1/boom/abc', { body: '{}', headers: { 'content-type': 'application/json', 'x-request-id': 'trace-42' } });
    assert.equal(res.status, 500);
    assert.equal(res.headers['x-request-id'], 'trace-42', 'a well-formed incoming id is kept and answered');
    assert.doesNotMatch(res.body.toString(), /disk said no/, 'the cause is not revealed');
    await settle(lines, 1);
    assert.equal(lines.length, 1, 'one line for the request');
    const [line] = lines;
    assert.equal(line!.level, 'error');
    assert.equal(line!.reqId, 'trace-42');
    assert.equal(line!.status, 500);
    assert.equal(line!.route, '/v1/boom/{id}', 'the route template, not the raw path');
    assert.equal(line!.err?.type, 'TypeError');
    assert.equal(line!.err?.message, 'disk said no');
    assert.match(line!.err?.stack ?? '', /disk said no\n\s+at /);

    const missing = await rawRequest(srv.url, 'GET', '/v1/missing', { headers: { 'x-request-id': 'bad id with spaces' } });
    assert.equal(missing.status, 404);
    const id = missing.headers['x-request-id'];
    assert.match(String(id), /^[0-9a-f-]{36}$/, 'a malformed id is replaced by a fresh one');
    await settle(lines, 2);
    const l404 = lines[1]!;
    assert.equal(l404.reqId, id, 'the answered id is the logged id');
    assert.equal(l404.level, 'info', 'a client mistake is not an error');
    assert.equal(l404.err, undefined, 'and has no stack');
    assert.deepEqual(finished.map((f) => [f.route, f.status]), [['/v1/boom/{id}', 500], ['/v1/missing', 404]]);
  } finally {
    await srv.close();
  }
});

test('lines written while serving a request carry its id (child logger), and a reported cause outside any request is logged at once', async () => {
  const { lines, logger } = capture();
  const srv = await serve(
    withRequestLogging(
      (_req, res) => {
        setRouteTemplate('/thing');
        setTimeout(() => {
          reportInternalError(new Error('late failure'));
          res.writeHead(200).end('ok');
        }, 5);
      },
      { logger },
    ),
  );
  try {
    const res = await rawRequest(srv.url, 'GET', '/thing?x=1');
    assert.equal(res.status, 200);
    await settle(lines, 1);
    assert.equal(lines[0]!.level, 'error', 'an internal error answered inside a 200 (a failed batch item) is still logged');
    assert.equal(lines[0]!.err?.message, 'late failure');
    assert.equal(lines[0]!.reqId, res.headers['x-request-id']);
  } finally {
    await srv.close();
  }
  reportInternalError(new Error('background'), logger);
  await settle(lines, 2);
  assert.equal(lines[1]!.err?.message, 'background');
  assert.equal(lines[1]!.reqId, undefined);
  assert.equal(requestIdFrom(['a'.repeat(129)]).length, 36, 'over-long ids are replaced');
});

test('the registry server: a storage failure is one error line with the cause; a 404 has no stack', async () => {
  const { lines, logger } = capture();
  const dir = await mkdtemp(join(tmpdir(), 'ukc-log-'));
  const { blobs, metadata } = openStores(dir);
  const failing = Object.create(blobs) as typeof blobs;
  failing.open = () => Promise.reject(new Error('EIO: the disk is gone'));
  const reg = await startTestRegistry({ dataDir: dir, blobs: failing, metadata, logger });
  try {
    const digest = await pushBlob(reg.url, 'library/x', 'some bytes');
    lines.length = 0;
    const res = await rawRequest(reg.url, 'GET', `/v2/library/x/blobs/${digest}`);
    assert.equal(res.status, 500);
    const notFound = await rawRequest(reg.url, 'GET', '/v2/library/x/manifests/latest');
    assert.equal(notFound.status, 404);
    await settle(lines, 2);
    const errors = lines.filter((l) => l.level === 'error');
    assert.equal(errors.length, 1, 'the 500 is logged exactly once');
    assert.equal(errors[0]!.reqId, res.headers['x-request-id']);
    assert.equal(errors[0]!.err?.message, 'EIO: the disk is gone');
    assert.equal(errors[0]!.route, '/v2 blob');
    const info = lines.find((l) => l.status === 404)!;
    assert.equal(info.level, 'info');
    assert.equal(info.err, undefined);
    assert.equal(info.role, 'test');
  } finally {
    await reg.close();
    await metadata.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the registry server: a client closing a blob GET early is no internal error (one info line, aborted, no stack)', async () => {
  const { lines, logger } = capture();
  const dir = await mkdtemp(join(tmpdir(), 'ukc-log-'));
  const reg = await startTestRegistry({ dataDir: dir, logger });
  try {
    // Large enough that the server is still writing when the client hangs up.
    const big = Buffer.alloc(64 * 1024 * 1024, 7);
    const digest = await pushBlob(reg.url, 'library/big', big);
    lines.length = 0;
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(`${reg.url}/v2/library/big/blobs/${digest}`, (res) => {
        res.once('data', () => {
          res.destroy();
          req.destroy();
          resolve();
        });
      });
      req.on('error', (err) => (req.destroyed ? undefined : reject(err)));
      req.end();
    });
    await settle(lines, 1);
    for (let i = 0; i < 50 && !lines.some((l) => l.msg === 'request'); i++) await new Promise((r) => setTimeout(r, 20));
    const errors = lines.filter((l) => l.level === 'error');
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(errors, [], 'nothing logged as an error');
    const line = lines.find((l) => l.msg === 'request');
    assert.ok(line, `one request line: ${JSON.stringify(lines)}`);
    assert.equal((line as Line & { aborted?: boolean }).aborted, true);
    assert.equal(line.err, undefined, 'no stack');
    const ok = await rawRequest(reg.url, 'GET', '/v2/');
    assert.equal(ok.status, 200, 'the server still serves');
  } finally {
    await reg.close();
    await rm(dir, { recursive: true, force: true });
  }
});

test('the v1 router: every 5xx is logged with its cause, a full disk is 507 ENOSPC in the envelope (not an internal error)', async () => {
  const { lines, logger } = capture();
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  const upstream = new Error('the control plane hung up');
  const router = createRouter({
    routes: [
      { method: 'POST', pattern: '/v1/full', handler: async () => { throw enospc; } },
      { method: 'GET', pattern: '/v1/unavailable', handler: async () => { throw new NodeError(Errno.EIO, 'cannot reach the control plane', 503, {}, { cause: upstream }); } },
      { method: 'GET', pattern: '/v1/items', collection: 'items', handler: async () => ({ items: [itemFailed(enospc, { name: 'a' }), itemOk({ name: 'b' })] }) },
    ],
    authenticate: singleTenantAuthenticator,
    maxBodyBytes: 1024,
  });
  const srv = await serve(withRequestLogging(router.listener, { logger }));
  try {
    const full = await rawRequest(srv.url, 'POST', '/v1/full');
    assert.equal(full.status, 507);
    const body = JSON.parse(full.body.toString()) as { status: string; errors: { status: number; error: number }[] };
    assert.equal(body.status, 'error');
    assert.deepEqual(body.errors.map((e) => [e.status, e.error]), [[507, Errno.ENOSPC]]);
    assert.doesNotMatch(full.body.toString(), /internal error/);
    const unavailable = await rawRequest(srv.url, 'GET', '/v1/unavailable');
    assert.equal(unavailable.status, 503);
    const items = await rawRequest(srv.url, 'GET', '/v1/items');
    assert.equal(items.status, 200);
    await settle(lines, 3);
    assert.equal(lines.length, 3);
    for (const l of lines) assert.equal(l.level, 'error', `${l.route ?? ''}: a 5xx (or a failed item with one) is an error line`);
    assert.equal(lines[0]!.status, 507);
    assert.match(lines[0]!.err?.message ?? '', /ENOSPC/, 'the full disk is the logged cause');
    assert.match(lines[1]!.err?.message ?? '', /^cannot reach the control plane/);
    assert.match(JSON.stringify(lines[1]!.err), /the control plane hung up/, 'with its own cause chained');
    assert.match(lines[2]!.err?.message ?? '', /ENOSPC/, 'a failed item of a batch answered 200 is logged too');
  } finally {
    await srv.close();
  }
});
