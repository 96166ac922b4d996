/**
 * End to end: a real registry client (skopeo) follows our Bearer challenge,
 * fetches a token from our token endpoint with `--creds <account>:<api token>`,
 * and reads a manifest with it — and is refused another tenant's repository.
 * The "registry" here is a minimal in-test route table serving one manifest;
 * the authentication path is the real src/auth one.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { AccountStore, AuthError, createRegistryAuthenticator, generateSigningKey, Policy, type RegistryAuthenticator } from '../../src/auth/index.js';

const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: 'application/vnd.oci.image.config.v1+json',
      digest: `sha256:${createHash('sha256').update(config).digest('hex')}`,
      size: config.length,
    },
    layers: [],
  }),
);

let server: Server;
let port: number;
let auth: RegistryAuthenticator;
let aliceToken: string;
let tmp: string;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ukc-skopeo-'));
  const accounts = new AccountStore({ database: new Database(':memory:') });
  accounts.createAccount('alice');
  accounts.createAccount('bob');
  aliceToken = accounts.createToken('alice', { scope: 'registry-pull' }).text;
  server = createServer((req, res) => {
    void (async () => {
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      if (path === '/v2/token') return auth.tokenEndpoint(req, res);
      try {
        if (path === '/v2/') {
          await auth.authorizeBase(req);
          return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        }
        const m = /^\/v2\/(.+)\/manifests\/latest$/.exec(path);
        if (m === null) return void res.writeHead(404).end();
        await auth.authorize(req, { repository: m[1] as string, actions: ['pull'] });
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': manifest.length });
        res.end(manifest);
      } catch (e) {
        if (!(e instanceof AuthError)) return void res.writeHead(500).end();
        const h: Record<string, string> = { 'content-type': 'application/json' };
        if (e.challenge) h['www-authenticate'] = e.challenge;
        res.writeHead(e.status, h).end(JSON.stringify({ errors: [{ code: e.code, message: e.message }] }));
      }
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
  auth = createRegistryAuthenticator({
    realm: `http://127.0.0.1:${port}/v2/token`,
    service: 'ukc-e2e',
    issuer: 'ukc',
    policy: new Policy(),
    accounts,
    signingKey: generateSigningKey(),
    rateLimiter: false,
  });
});

after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(tmp, { recursive: true, force: true });
});

function skopeo(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'skopeo',
      ['--tmpdir', tmp, ...args],
      { timeout: 30_000, env: { ...process.env, HOME: tmp, REGISTRY_AUTH_FILE: join(tmp, 'auth.json') } },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

test('skopeo --creds alice:<token> reads alice/app through our token endpoint, not bob/app', async (t) => {
  const which = await new Promise<boolean>((r) => execFile('skopeo', ['--version'], (e) => r(e === null)));
  if (!which) return t.skip('skopeo not installed');
  const base = ['inspect', '--raw', '--tls-verify=false', '--creds', `alice:${aliceToken}`];
  const ok = await skopeo([...base, `docker://127.0.0.1:${port}/alice/app:latest`]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual(JSON.parse(ok.stdout), JSON.parse(manifest.toString()));
  const denied = await skopeo([...base, `docker://127.0.0.1:${port}/bob/app:latest`]);
  assert.notEqual(denied.code, 0);
  assert.match(denied.stderr, /unauthorized|denied|401/i);
  const badCreds = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `bob:${aliceToken}`, `docker://127.0.0.1:${port}/alice/app:latest`]);
  assert.notEqual(badCreds.code, 0);
});
