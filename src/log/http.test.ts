// Request logging: one line per request, the id in the response and the line, causes of 500s, no stacks for 4xx.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { createRouter } from '../api/index.js';
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
