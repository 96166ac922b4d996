// Security case 19 (names and certificates across tenants): which certificate the gateway's SNI
// selection serves (real TLS handshakes against the node's CertificateDirectory), and which domains
// a tenant may claim through /v1/services (real accounts and tokens, the node API in-process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { AccountStore } from '../../auth/index.js';
import { CertificateDirectory, type ServedCertificate, type ServedDomain } from '../gateway/index.js';
import { ensureNodeTls } from './ca.js';
import { makeHarness } from '../harness.test-support.js';
import { Errno, localTokenVerifier, tokenAuthenticator } from '../index.js';

function selfSigned(dir: string, name: string, org: string, sans: string[]): { chainPem: string; keyPem: string } {
  const key = join(dir, `${name}.key`);
  const crt = join(dir, `${name}.pem`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', crt, '-days', '2', '-subj', `/CN=${sans[0]}/O=${org}`, '-addext', `subjectAltName=${sans.map((s) => `DNS:${s}`).join(',')}`], { stdio: 'ignore' });
  return { chainPem: readFileSync(crt, 'utf8'), keyPem: readFileSync(key, 'utf8') };
}

/** The subject O of the certificate a TLS server picking contexts from `dir` presents for `servername`. */
async function servedOrg(directory: CertificateDirectory, servername: string): Promise<string> {
  const server = tls.createServer({ ...directory.defaultCredentials(), SNICallback: (name, cb) => cb(null, directory.contextFor(name)) }, (s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (server.address() as AddressInfo).port;
    return await new Promise<string>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false }, () => {
        const cert = s.getPeerCertificate();
        s.destroy();
        resolve(String(cert.subject.O));
      });
      s.on('error', reject);
    });
  } finally {
    server.close();
  }
}

test('row 19: a certificate is served only for domains its owner holds; the node certificate for everything else', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-tenant-certs-'));
  try {
    const node = await ensureNodeTls({ dir: join(dir, 'tls'), zone: 'local.localhost' });
    const certs: ServedCertificate[] = [
      { uuid: 'c-alice', owner: 'alice', hostnames: ['alice-app.example.com'], ...selfSigned(dir, 'a', 'alice', ['alice-app.example.com']) },
      // bob uploads a certificate for alice's domain, and a wildcard over the node's zone and example.com.
      { uuid: 'c-bob-alice', owner: 'bob', hostnames: ['alice-app.example.com'], ...selfSigned(dir, 'b1', 'bob', ['alice-app.example.com']) },
      { uuid: 'c-bob-wild', owner: 'bob', hostnames: ['*.local.localhost', '*.example.com'], ...selfSigned(dir, 'b2', 'bob-wild', ['*.local.localhost', '*.example.com']) },
    ];
    const domains: ServedDomain[] = [
      { fqdn: 'alice-app.example.com', owner: 'alice' },
      { fqdn: 'shop.local.localhost', owner: 'alice' },
      { fqdn: 'bobs.local.localhost', owner: 'bob' },
      { fqdn: 'named.example.com', owner: 'bob', certificate: 'c-bob-wild' },
    ];
    const nodeOrg = /(?:^|\n)O=([^\n]+)/.exec(new X509Certificate(node.certPem).subject)?.[1] as string;
    assert.ok(nodeOrg && !['alice', 'bob', 'bob-wild'].includes(nodeOrg));
    const directory = new CertificateDirectory({ cert: node.certPem, key: node.keyPem }, () => certs, () => domains);
    assert.equal(await servedOrg(directory, 'alice-app.example.com'), 'alice', "alice's domain gets alice's certificate, never bob's");
    assert.equal(await servedOrg(directory, 'shop.local.localhost'), nodeOrg, "bob's *.local.localhost is not served for alice's generated name");
    assert.equal(await servedOrg(directory, 'bobs.local.localhost'), 'bob-wild', 'bob may serve his own certificate for his own domain');
    assert.equal(await servedOrg(directory, 'named.example.com'), 'bob-wild', 'the certificate a domain names');
    assert.equal(await servedOrg(directory, 'unclaimed.example.com'), nodeOrg, 'a name nobody holds gets the node certificate');
    assert.equal(await servedOrg(directory, 'ALICE-APP.example.com.'), 'alice', 'case and a trailing dot do not matter');
    // The domain changes hands: the selection follows its owner at the next reload.
    domains[0] = { fqdn: 'alice-app.example.com', owner: 'bob' };
    directory.reload();
    assert.equal(await servedOrg(directory, 'alice-app.example.com'), 'bob');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('row 19: platform names cannot be claimed; a clash answers without naming the other tenant', async () => {
  const accounts = new AccountStore({ database: new Database(':memory:') });
  accounts.createAccount('alice');
  accounts.createAccount('bob');
  const alice = { authorization: `Bearer ${accounts.createToken('alice').text}` };
  const bob = { authorization: `Bearer ${accounts.createToken('bob').text}` };
  const h = await makeHarness({ authenticate: tokenAuthenticator(localTokenVerifier(accounts)), gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) } });
  try {
    const services = [{ port: 443, handlers: ['http', 'tls'] }];
    for (const name of ['a.localhost', 'localhost.', '127.0.0.1', '10.0.0.1', 'node.internal', 'x.internal', 'local.localhost', 'evil.local.localhost', 'a.b.local.localhost']) {
      const r = await h.call('POST', '/v1/services', { services, domains: [{ name }] }, bob);
      assert.equal(r.status, 400, `${name}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.errors?.[0]?.error ?? Errno.EINVAL, Errno.EINVAL);
      assert.match(String(r.body.errors?.[0]?.message ?? r.body.message), /reserved by the platform/, name);
    }
    // A label (no dot) is the platform's generated name in the node's zone: `localhost` there is not localhost.
    const label = await h.call('POST', '/v1/services', { services, domains: [{ name: 'localhost' }] }, bob);
    assert.deepEqual((label.body.data.service_groups?.[0] as { domains: unknown }).domains, [{ fqdn: 'localhost.local.localhost' }]);
    const own = await h.call('POST', '/v1/services', { name: 'alice-shop', services, domains: [{ name: 'shop' }, { name: 'alice-app.example.com' }] }, alice);
    assert.equal(own.status, 200, JSON.stringify(own.body));
    const group = own.body.data.service_groups?.[0] as { uuid: string; name: string };
    for (const name of ['alice-app.example.com', 'shop']) {
      const clash = await h.call('POST', '/v1/services', { services, domains: [{ name }] }, bob);
      assert.equal(clash.status, 409, JSON.stringify(clash.body));
      const text = JSON.stringify(clash.body).split(name).join('<domain>');
      for (const secret of ['alice', group.uuid, group.name]) assert.ok(!text.includes(secret), `the clash answer names ${secret}: ${text}`);
    }
  } finally {
    await h.cleanup();
  }
});
