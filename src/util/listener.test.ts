import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { get } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createListener, parsePublicUrl, readListenerTls, schemeOf, tlsFromOptions, type ListenerTls } from './listener.js';
import { UsageError, UserError } from './command.js';
import { startControlPlane } from '../controlplane/index.js';

let dir: string;
let tls: ListenerTls;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ukc-listener-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ], { stdio: 'ignore' });
  tls = readListenerTls(join(dir, 'cert.pem'), join(dir, 'key.pem'));
});

after(() => rmSync(dir, { recursive: true, force: true }));

function getStatus(url: string, ca: Buffer): Promise<{ status: number; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get(url, { ca, agent: false }, (res) => {
      res.resume();
      resolve({ status: res.statusCode ?? 0, headers: res.headers });
    }).on('error', reject);
  });
}

describe('listeners', () => {
  it('createListener with TLS answers over HTTPS for a client trusting the certificate', async () => {
    const server = createListener(tls, (_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      assert.equal(schemeOf(tls), 'https');
      assert.equal((await getStatus(`https://127.0.0.1:${port}/`, tls.cert)).status, 200);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('the control plane serves its API and registry over TLS with an https URL', async () => {
    const cp = await startControlPlane({ dataDir: join(dir, 'cp'), host: '127.0.0.1', port: 0, tls, logError: () => {} });
    try {
      assert.match(cp.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const res = await getStatus(`${cp.url}/v2/alice/app/tags/list`, tls.cert);
      assert.equal(res.status, 401);
      assert.ok(String(res.headers['www-authenticate']).includes(`realm="${cp.url}/v2/token"`));
    } finally {
      await cp.close();
    }
  });

  it('--tls-cert and --tls-key go together; a bad file is a user error', () => {
    assert.equal(tlsFromOptions({}), undefined);
    assert.throws(() => tlsFromOptions({ 'tls-cert': join(dir, 'cert.pem') }), UsageError);
    assert.throws(() => tlsFromOptions({ 'tls-key': join(dir, 'key.pem') }), UsageError);
    assert.throws(() => tlsFromOptions({ 'tls-cert': join(dir, 'missing.pem'), 'tls-key': join(dir, 'key.pem') }), UserError);
    assert.throws(() => tlsFromOptions({ 'tls-cert': join(dir, 'key.pem'), 'tls-key': join(dir, 'key.pem') }), /not a usable pair/);
    assert.deepEqual(tlsFromOptions({ 'tls-cert': join(dir, 'cert.pem'), 'tls-key': join(dir, 'key.pem') })?.cert, tls.cert);
  });

  it('parsePublicUrl keeps the origin and refuses anything else', () => {
    assert.equal(parsePublicUrl('https://cp.example.com'), 'https://cp.example.com');
    assert.equal(parsePublicUrl('http://10.0.0.5:7000/'), 'http://10.0.0.5:7000');
    for (const bad of ['cp.example.com', 'ftp://cp.example.com', 'https://u:p@cp.example.com', 'https://cp.example.com/v2', 'https://cp.example.com/?a=1', 'https://cp.example.com/#x']) {
      assert.throws(() => parsePublicUrl(bad), UsageError, bad);
    }
  });
});
