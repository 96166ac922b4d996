// Decision 7: every listener can serve TLS. `ukcd registry --tls-cert --tls-key` with a
// self-signed certificate made here: curl trusting that certificate gets 200 on /v2/, our
// RegistryClient pings it when given the CA and refuses it without, and plain HTTP is not served.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import { RegistryClient } from '../../src/client/index.js';

const run = promisify(execFile);
const root = new URL('../../../', import.meta.url).pathname;

let dir: string;
let child: ChildProcess | undefined;
let url: string;

async function startRegistry(args: string[]): Promise<{ child: ChildProcess; url: string }> {
  const proc = spawn(process.execPath, [join(root, 'bin/ukcd.js'), 'registry', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const found = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`registry did not start: ${out}`)), 15_000);
    const take = (c: Buffer): void => {
      out += c.toString();
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', take);
    proc.stderr!.on('data', take);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`registry exited with ${code}: ${out}`));
    });
  });
  return { child: proc, url: found };
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ukc-tls-'));
  await run('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'),
  ]);
  const started = await startRegistry(['--data', join(dir, 'data'), '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'key.pem')]);
  child = started.child;
  url = started.url;
});

after(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    const proc = child;
    const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
    proc.kill('SIGTERM');
    await gone;
  }
  await rm(dir, { recursive: true, force: true });
});

test('ukcd registry --tls-cert/--tls-key serves HTTPS: curl with the CA gets 200 on /v2/', async () => {
  assert.match(url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const { stdout } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', '--cacert', join(dir, 'cert.pem'), `${url}/v2/`]);
  assert.equal(stdout, '200');
  // Without trusting the certificate, curl refuses it (exit 60: peer certificate cannot be authenticated).
  await assert.rejects(run('curl', ['-sS', '-o', '/dev/null', '--max-time', '10', `${url}/v2/`]), (err: { code?: number }) => err.code === 60);
  // Plain HTTP on the same port gets no HTTP answer.
  const plain = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', url.replace('https:', 'http:') + '/v2/']).then(
    (r) => r.stdout,
    () => 'refused',
  );
  assert.notEqual(plain, '200');
});

test('RegistryClient pings the TLS registry given the CA, and refuses it without', async () => {
  const ca = await readFile(join(dir, 'cert.pem'));
  const trusting = new RegistryClient({ baseUrl: url, ca, retries: 0 });
  const plain = new RegistryClient({ baseUrl: url, retries: 0 });
  try {
    await trusting.ping();
    await assert.rejects(plain.ping(), /certificate/i);
  } finally {
    trusting.close();
    plain.close();
  }
});

test('--tls-cert without --tls-key, or a key that does not match, is refused at start', async () => {
  await assert.rejects(startRegistry(['--data', join(dir, 'data2'), '--tls-cert', join(dir, 'cert.pem')]), /go together/);
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, 'other.pem')]);
  await assert.rejects(
    startRegistry(['--data', join(dir, 'data3'), '--tls-cert', join(dir, 'cert.pem'), '--tls-key', join(dir, 'other.pem')]),
    /not a usable pair/,
  );
});
