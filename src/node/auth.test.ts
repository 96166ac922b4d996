// The node's token verifier that asks the control plane (`ukcd node --auth-url`): real control
// plane over loopback; positive answers cached for the TTL, refusals for at most a second;
// credentials go to the control plane's /v1/auth only and never follow a redirect.
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startControlPlane } from '../controlplane/index.js';
import { ControlPlaneTokenVerifier, tokenAuthenticator } from './index.js';

test('control plane verifier: valid tokens with quotas, cached for the TTL; refusals cached at most 1 s', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-cpv-'));
  const cp = await startControlPlane({ dataDir: dir, host: '127.0.0.1', port: 0, logError: () => {} });
  let now = 1_000_000;
  let asked = 0;
  const counting: typeof fetch = (input, init) => {
    asked++;
    return fetch(input, init);
  };
  try {
    cp.accounts.createAccount('alice', { quotas: { maxServices: 2 } });
    const alice = cp.accounts.createToken('alice');
    const v = new ControlPlaneTokenVerifier({ authUrl: cp.url, positiveTtlMs: 10_000, negativeTtlMs: 60_000, now: () => now, fetch: counting });
    const found = await v.verify(alice.text);
    assert.deepEqual(found, { kind: 'account', name: 'alice', role: 'user', tokenScope: 'full', quotas: { maxInstances: 16, maxLiveMemoryMb: 4096, maxServices: 2 } });
    assert.equal(asked, 1);
    // Cached: revoking is seen only after the TTL.
    cp.accounts.revokeToken(alice.info.id);
    assert.equal((await v.verify(alice.text))?.name, 'alice');
    assert.equal(asked, 1);
    now += 10_001;
    assert.equal(await v.verify(alice.text), undefined);
    assert.equal(asked, 2);
    // A refusal is remembered for at most a second, whatever negativeTtlMs says.
    const fresh = cp.accounts.createToken('alice');
    const unknownYet = fresh.text.slice(0, -1) + (fresh.text.endsWith('A') ? 'B' : 'A');
    assert.equal(await v.verify(unknownYet), undefined);
    assert.equal(await v.verify(unknownYet), undefined);
    assert.equal(asked, 3);
    now += 1_001;
    assert.equal(await v.verify(unknownYet), undefined);
    assert.equal(asked, 4);
    // Junk is never sent upstream.
    assert.equal(await v.verify('Bearer-ish junk'), undefined);
    assert.equal(asked, 4);
    // Through the node API hooks: a root token is root; a registry-only token is not a platform credential.
    const authenticate = tokenAuthenticator(v);
    const rootToken = readFileSync(cp.rootTokenFile, 'utf8').trim();
    const h = (t: string): IncomingHttpHeaders => ({ authorization: `Bearer ${t}` });
    assert.deepEqual({ ...(await authenticate(h(rootToken))) }, { kind: 'account', name: 'root', role: 'root', tokenScope: 'full', quotas: { maxInstances: 16, maxLiveMemoryMb: 4096, maxServices: 8 } });
    assert.equal(await authenticate(h(cp.accounts.createToken('alice', { scope: 'registry' }).text)), undefined);
    assert.equal(await authenticate({}), undefined);
  } finally {
    await cp.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('control plane verifier: a redirect is not followed (the token stays home); an unreachable control plane is 503', async () => {
  const seen: string[] = [];
  const elsewhere = createServer((req, res) => {
    seen.push(String(req.headers.authorization));
    res.end('{}');
  });
  const redirector = createServer((_req, res) => {
    res.writeHead(307, { location: `http://127.0.0.1:${(elsewhere.address() as AddressInfo).port}/v1/auth` });
    res.end();
  });
  await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
  try {
    const token = 'ukc_' + 'a'.repeat(32) + '_' + 'B'.repeat(43);
    const v = new ControlPlaneTokenVerifier({ authUrl: `http://127.0.0.1:${(redirector.address() as AddressInfo).port}` });
    await assert.rejects(v.verify(token), (e: Error & { httpStatus?: number }) => e.httpStatus === 503);
    assert.deepEqual(seen, []);
    const port = (elsewhere.address() as AddressInfo).port;
    await new Promise<void>((r) => elsewhere.close(() => r()));
    const gone = new ControlPlaneTokenVerifier({ authUrl: `http://127.0.0.1:${port}`, requestTimeoutMs: 2000 });
    await assert.rejects(gone.verify(token), /control plane does not answer/);
    assert.throws(() => new ControlPlaneTokenVerifier({ authUrl: 'http://user:pw@127.0.0.1:1' }), /credentials/);
    assert.throws(() => new ControlPlaneTokenVerifier({ authUrl: 'file:///etc/passwd' }), /http/);
  } finally {
    redirector.close();
    elsewhere.close();
  }
});
