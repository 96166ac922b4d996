// Crash safety: SIGKILL `ukcd registry` mid-upload, restart it on the same data dir.
// No partial blob may appear, the session resumes from the reported Range,
// and everything acknowledged before the crash is still served.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { digestOf } from '../../src/oci/digest.js';
import { rawRequest } from '../../src/registry/testkit.js';

const root = new URL('../../../', import.meta.url).pathname;

async function startDaemon(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [join(root, 'bin/ukcd.js'), 'registry', '--listen', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`registry did not start: ${out}`)), 15_000);
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`registry exited with ${code}: ${out}`)));
  });
  return { child, url };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

test('SIGKILL mid-upload: nothing partial visible, session resumes, acknowledged data kept', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ukc-crash-'));
  let daemon: { child: ChildProcess; url: string } | undefined;
  try {
    daemon = await startDaemon(dataDir);
    const acked = randomBytes(64 * 1024);
    const ackedDigest = digestOf(acked).text;
    const mono = await rawRequest(daemon.url, 'POST', `/v2/crash/app/blobs/uploads/?digest=${ackedDigest}`, { body: acked });
    assert.equal(mono.status, 201);

    const data = randomBytes(8 * 1024 * 1024);
    const digest = digestOf(data).text;
    const start = await rawRequest(daemon.url, 'POST', '/v2/crash/app/blobs/uploads/');
    const loc = String(start.headers.location);
    const first = await rawRequest(daemon.url, 'PATCH', loc, { body: data.subarray(0, 1024 * 1024), headers: { 'Content-Range': `0-${1024 * 1024 - 1}` } });
    assert.equal(first.status, 202);

    // Stream the next chunk, and kill the server while it is arriving.
    const url = daemon.url;
    const child = daemon.child;
    await new Promise<void>((resolve) => {
      const req = httpRequest(new URL(loc, url), { method: 'PATCH', headers: { 'Content-Length': data.length - 1024 * 1024 }, agent: false });
      req.on('error', () => resolve());
      req.on('response', () => resolve());
      req.write(data.subarray(1024 * 1024, 3 * 1024 * 1024), () => {
        setTimeout(() => {
          child.kill('SIGKILL');
          setTimeout(() => {
            req.destroy();
            resolve();
          }, 100);
        }, 200);
      });
    });
    await exited(child);

    daemon = await startDaemon(dataDir);
    assert.equal((await rawRequest(daemon.url, 'HEAD', `/v2/crash/app/blobs/${digest}`)).status, 404, 'no partial blob');
    const acknowledged = await rawRequest(daemon.url, 'GET', `/v2/crash/app/blobs/${ackedDigest}`);
    assert.equal(acknowledged.status, 200);
    assert.deepEqual(acknowledged.body, acked);

    const status = await rawRequest(daemon.url, 'GET', loc);
    if (status.status === 404) return; // cleanly gone is allowed
    assert.equal(status.status, 204);
    const m = /^0-(\d+)$/.exec(String(status.headers.range));
    assert.ok(m, `Range ${status.headers.range}`);
    const next = Number(m[1]) + 1;
    assert.ok(next >= 1024 * 1024 && next <= 3 * 1024 * 1024, `resume offset ${next}`);
    const put = await rawRequest(daemon.url, 'PUT', `${loc}?digest=${digest}`, {
      body: data.subarray(next),
      headers: { 'Content-Range': `${next}-${data.length - 1}` },
    });
    assert.equal(put.status, 201, put.body.toString());
    const got = await rawRequest(daemon.url, 'GET', `/v2/crash/app/blobs/${digest}`);
    assert.equal(got.body.length, data.length);
    assert.ok(got.body.equals(data));
  } finally {
    if (daemon && daemon.child.exitCode === null && daemon.child.signalCode === null) {
      daemon.child.kill('SIGTERM');
      await exited(daemon.child);
    }
    await rm(dataDir, { recursive: true, force: true });
  }
});
