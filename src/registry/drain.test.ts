// SIGTERM drains (issue 13, item 7): closing a registry server with a deadline stops accepting at
// once, lets an upload in flight finish, and cuts only what is still open at the deadline.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { digestOf } from '../oci/index.js';
import { startRegistryServer } from './server.js';
import { DEFAULT_SHUTDOWN_DEADLINE_MS } from '../util/index.js';

/** A monolithic upload sent in `chunks` pieces, `gapMs` apart; resolves with the status (or the socket error). */
function slowUpload(url: string, repo: string, body: Buffer, chunks: number, gapMs: number): { done: Promise<number | Error>; started: Promise<void> } {
  let markStarted!: () => void;
  const started = new Promise<void>((r) => (markStarted = r));
  const done = new Promise<number | Error>((resolve) => {
    const req = request(`${url}/v2/${repo}/blobs/uploads/?digest=${digestOf(body).text}`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body.length) },
    });
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', (err) => resolve(err));
    // Started once the server holds the request: connected, and the first bytes had time to arrive.
    req.on('socket', (sock) => sock.once('connect', () => setTimeout(markStarted, 150)));
    const size = Math.ceil(body.length / chunks);
    let i = 0;
    const next = (): void => {
      if (i * size >= body.length) {
        req.end();
        return;
      }
      req.write(body.subarray(i * size, (i + 1) * size));
      i++;
      setTimeout(next, gapMs);
    };
    next();
  });
  return { done, started };
}

function refused(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const s = connect(Number(port), hostname);
    s.on('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.on('error', () => resolve(true));
  });
}

test('a draining registry refuses new connections, lets an upload in flight finish, then stops', async () => {
  assert.equal(DEFAULT_SHUTDOWN_DEADLINE_MS, 30_000, 'the named deadline the daemons drain with');
  const dataDir = await mkdtemp(join(tmpdir(), 'ukc-drain-'));
  const srv = await startRegistryServer({ listen: { host: '127.0.0.1', port: 0 }, dataDir });
  try {
    const body = randomBytes(2 * 1024 * 1024);
    const upload = slowUpload(srv.url, 'library/slow', body, 10, 100);
    await upload.started;
    const t0 = Date.now();
    const closing = srv.close({ deadlineMs: 10_000 });
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(await refused(srv.url), true, 'no new connection while draining');
    assert.equal(await upload.done, 201, 'the upload in flight completes');
    await closing;
    const took = Date.now() - t0;
    assert.ok(took < 5_000, `closed once the upload was done (${took} ms), not at the deadline`);
  } finally {
    await srv.close();
    await rm(dataDir, { recursive: true, force: true });
  }
});

test('a draining registry cuts what is still open at the deadline', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ukc-drain-'));
  const srv = await startRegistryServer({ listen: { host: '127.0.0.1', port: 0 }, dataDir });
  try {
    const body = randomBytes(1024 * 1024);
    // 20 s of upload against a 300 ms deadline.
    const upload = slowUpload(srv.url, 'library/stalled', body, 20, 1000);
    await upload.started;
    const t0 = Date.now();
    await srv.close({ deadlineMs: 300 });
    const took = Date.now() - t0;
    assert.ok(took >= 250 && took < 3_000, `closed at the deadline (${took} ms)`);
    const outcome = await upload.done;
    assert.ok(outcome instanceof Error, `the stalled upload was cut (${String(outcome)})`);
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});
