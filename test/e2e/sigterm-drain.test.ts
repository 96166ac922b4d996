// SIGTERM drains (issue 13, item 7) on the real process: `ukcd registry` asked to stop while an
// upload streams finishes that upload (201), refuses new connections meanwhile, then exits 0.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { digestOf } from '../../src/oci/digest.js';
import { newEnv, startDaemon } from './node-support.js';
import { rmSync } from 'node:fs';

test('SIGTERM to ukcd registry during an upload: the upload completes, new connections are refused, exit 0', async () => {
  const env = newEnv('drain');
  const d = await startDaemon(['registry', '--listen', '127.0.0.1:0', '--data', join(env.dir, 'data')]);
  try {
    const body = randomBytes(4 * 1024 * 1024);
    const chunks = 16;
    const size = body.length / chunks;
    let connected!: () => void;
    const isConnected = new Promise<void>((r) => (connected = r));
    const status = new Promise<number | Error>((resolve) => {
      const req = request(`${d.url}/v2/drain/me/blobs/uploads/?digest=${digestOf(body).text}`, { method: 'POST', headers: { 'content-length': String(body.length) } });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', resolve);
      req.on('socket', (s) => s.once('connect', () => setTimeout(connected, 150)));
      let i = 0;
      const next = (): void => {
        if (i === chunks) return void req.end();
        req.write(body.subarray(i * size, (i + 1) * size));
        i++;
        setTimeout(next, 100);
      };
      next();
    });
    await isConnected;
    const exited = new Promise<number | null>((r) => d.child.once('exit', (code) => r(code)));
    d.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 100));
    const { port } = new URL(d.url);
    const refused = await new Promise<boolean>((resolve) => {
      const s = connect(Number(port), '127.0.0.1');
      s.on('connect', () => {
        s.destroy();
        resolve(false);
      });
      s.on('error', () => resolve(true));
    });
    assert.equal(refused, true, 'no new connection once draining');
    assert.equal(await status, 201, 'the upload in flight finished');
    assert.equal(await exited, 0);
    assert.match(d.output(), /registry draining \(up to 30 s/);
    assert.match(d.output(), /registry stopped/);
  } finally {
    if (d.child.exitCode === null) d.child.kill('SIGKILL');
    rmSync(env.dir, { recursive: true, force: true });
  }
});
