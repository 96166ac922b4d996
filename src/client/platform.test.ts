import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { accountPrincipal } from '../auth/index.js';
import { makeHarness } from '../node/harness.test-support.js';
import {
  inProcessTransport,
  PlatformApiError,
  PlatformAuthError,
  PlatformClient,
  PlatformProtocolError,
  PlatformUnreachableError,
  selectorOf,
} from './platform.js';

const TOKEN = 'secret-token-for-tests';

async function withNode(fn: (client: PlatformClient, h: Awaited<ReturnType<typeof makeHarness>>) => Promise<void>): Promise<void> {
  const h = await makeHarness({
    authenticate: (headers) => (headers.authorization === `Bearer ${TOKEN}` ? accountPrincipal('alice') : undefined),
  });
  try {
    const client = new PlatformClient({ baseUrl: 'http://node.test', token: TOKEN, transport: inProcessTransport((r) => h.api.handle(r)) });
    await fn(client, h);
  } finally {
    await h.cleanup();
  }
}

test('creates, lists, gets, stops, starts and deletes instances through the node API', async () => {
  await withNode(async (client) => {
    const created = await client.createInstance({ image: 'alice/httpserver:latest', name: 'web', memory_mb: 256, replicas: 1 });
    assert.equal(created.length, 2);
    assert.equal(created[0]!.name, 'web');
    assert.match(created[0]!.image ?? '', /^alice\/httpserver@sha256:a{64}$/);
    const all = await client.listInstances();
    assert.deepEqual(all.map((i) => i.name).sort(), created.map((i) => i.name).sort());
    const [web] = await client.getInstances([{ name: 'web' }]);
    assert.equal(web!.memory_mb, 256);
    const stopped = await client.stopInstances([{ name: 'web' }]);
    assert.equal(stopped[0]!.state, 'stopped');
    const started = await client.startInstances([{ uuid: web!.uuid }]);
    assert.equal(started[0]!.name, 'web');
    await client.deleteInstances([{ name: 'web' }]);
    assert.equal((await client.listInstances()).length, 1);
  });
});

test('an unknown instance is a PlatformApiError carrying ENOENT', async () => {
  await withNode(async (client) => {
    await assert.rejects(client.getInstances([{ name: 'nope' }]), (err: unknown) => {
      assert.ok(err instanceof PlatformApiError);
      assert.equal(err.errno, 2);
      assert.equal(err.failures[0]?.name, 'nope');
      return true;
    });
  });
});

test('a partial success throws naming each failed item unless allowed', async () => {
  await withNode(async (client) => {
    await client.createInstance({ image: 'alice/httpserver:latest', name: 'one' });
    await assert.rejects(client.getInstances([{ name: 'one' }, { name: 'two' }]), /two: /);
    const items = await client.items('GET', '/v1/instances', 'instances', [{ name: 'one' }, { name: 'two' }], { allowPartial: true });
    assert.deepEqual(items.map((i) => i.status), ['success', 'error']);
  });
});

test('a bad token is a PlatformAuthError that names the token, not the resource', async () => {
  const h = await makeHarness({ authenticate: (headers) => (headers.authorization === `Bearer ${TOKEN}` ? accountPrincipal('alice') : undefined) });
  try {
    const client = new PlatformClient({ baseUrl: 'http://node.test', token: 'wrong', transport: inProcessTransport((r) => h.api.handle(r)) });
    await assert.rejects(client.createInstance({ image: 'alice/httpserver:latest' }), (err: unknown) => {
      assert.ok(err instanceof PlatformAuthError);
      assert.equal(err.status, 401);
      assert.match(err.message, /token was rejected by http:\/\/node\.test/);
      assert.doesNotMatch(err.message, /wrong/);
      return true;
    });
  } finally {
    await h.cleanup();
  }
});

test('reads logs as decoded bytes over a real socket (GET with a JSON body)', async () => {
  await withNode(async (_c, h) => {
    const server = createServer((req, res) => h.api.handler(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const client = new PlatformClient({ baseUrl: `http://127.0.0.1:${port}/`, token: TOKEN });
      const [inst] = await client.createInstance({ image: 'alice/httpserver:latest', name: 'logger' });
      const chunk = await client.instanceLog(selectorOf('logger'));
      assert.equal(chunk.name, 'logger');
      assert.equal(chunk.uuid, inst!.uuid);
      assert.equal(chunk.output.toString(), 'hello from logger\n');
    } finally {
      server.close();
    }
  });
});

test('nothing listening is PlatformUnreachableError; a non-envelope answer is PlatformProtocolError', async () => {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    await assert.rejects(new PlatformClient({ baseUrl: `http://127.0.0.1:${port}` }).listInstances(), PlatformProtocolError);
  } finally {
    await new Promise<void>((r) => server.close(() => r()));
  }
  await assert.rejects(new PlatformClient({ baseUrl: `http://127.0.0.1:${port}` }).listInstances(), PlatformUnreachableError);
});

test('selectorOf tells UUIDs from names', () => {
  assert.deepEqual(selectorOf('3f1b2c3d-1111-4222-8333-444455556666'), { uuid: '3f1b2c3d-1111-4222-8333-444455556666' });
  assert.deepEqual(selectorOf('httpserver-ab12c'), { name: 'httpserver-ab12c' });
});
