// End to end with accounts: a real `ukcd registry --auth` process, accounts and tokens made with
// `ukcd accounts` / `ukcd tokens`, skopeo pushing with `--dest-creds alice:<token>`, curl for the
// anonymous challenge, and hostile tokens against the real server (security row 8).
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { generateSigningKey, parseJwt, signJwt, type SigningKey } from '../../src/auth/index.js';
import { errorCode, rawRequest } from '../../src/registry/testkit.js';

const root = new URL('../../../', import.meta.url).pathname;
const ukcd = join(root, 'bin/ukcd.js');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000, env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1;
      resolve({ code, stdout, stderr });
    });
  });
}

const tools = existsSync('/usr/bin/skopeo') && existsSync('/usr/bin/umoci') && existsSync('/usr/bin/curl');

let work: string;
let dataDir: string;
let daemon: ChildProcess | undefined;
let url: string;
let host: string;
let rootTokenFile: string;
const tok: Record<string, string> = {};

async function ukcdRun(args: string[]): Promise<string> {
  const r = await run(process.execPath, [ukcd, ...args]);
  assert.equal(r.code, 0, `ukcd ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function skopeo(args: string[]): Promise<Ran> {
  // Own HOME and auth file: nothing from the machine's credentials is used or written.
  return run('skopeo', ['--tmpdir', work, ...args], { ...process.env, HOME: work, REGISTRY_AUTH_FILE: join(work, 'auth.json') });
}

before(async () => {
  if (!tools) return;
  work = await mkdtemp(join(tmpdir(), 'ukc-authe2e-'));
  dataDir = join(work, 'data');
  const child = spawn(process.execPath, [ukcd, 'registry', '--auth', '--listen', '127.0.0.1:0', '--data', dataDir], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  daemon = child;
  const out = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`registry did not start: ${text}`)), 15_000);
    child.stdout!.on('data', (c: Buffer) => {
      text += c.toString();
      if (/root token .* \(mode 0600\)/.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    child.once('exit', (code) => reject(new Error(`registry exited with ${code}: ${text}`)));
  });
  url = /listening on (http:\/\/\S+)/.exec(out)![1]!;
  host = url.replace('http://', '');
  rootTokenFile = /root token written to (\S+) \(mode 0600\)/.exec(out)![1]!;
  tok.root = (await readFile(rootTokenFile, 'utf8')).trim();
  await ukcdRun(['accounts', 'create', 'alice', '--data', dataDir]);
  await ukcdRun(['accounts', 'create', 'bob', '--data', dataDir]);
  tok.alice = (await ukcdRun(['tokens', 'create', 'alice', '--data', dataDir])).trim();
  tok.alicePull = (await ukcdRun(['tokens', 'create', 'alice', '--scope', 'registry-pull', '--data', dataDir])).trim();
  tok.bob = (await ukcdRun(['tokens', 'create', 'bob', '--data', dataDir])).trim();

  const img = join(work, 'img');
  for (const args of [['init', '--layout', img], ['new', '--image', `${img}:v1`], ['unpack', '--rootless', '--image', `${img}:v1`, join(work, 'bundle')]]) {
    const r = await run('umoci', args);
    assert.equal(r.code, 0, r.stderr);
  }
  await writeFile(join(work, 'bundle', 'rootfs', 'hello.txt'), 'hello from alice\n');
  assert.equal((await run('umoci', ['repack', '--image', `${img}:v1`, join(work, 'bundle')])).code, 0);
});

after(async () => {
  if (daemon && daemon.exitCode === null) {
    const gone = new Promise<void>((resolve) => daemon!.once('exit', () => resolve()));
    daemon.kill('SIGTERM');
    await gone;
  }
  if (work) await rm(work, { recursive: true, force: true });
});

const rootAuth = (): Record<string, string> => ({ Authorization: `Bearer ${tok.root!}` });

describe('ukcd registry --auth with skopeo and curl', { timeout: 180_000 }, () => {
  it('first start wrote the root token file 0600 and the tokens are ukc_ API tokens', async (t) => {
    if (!tools) return t.skip('skopeo, umoci or curl not installed');
    assert.equal((await stat(rootTokenFile)).mode & 0o777, 0o600);
    for (const v of Object.values(tok)) assert.match(v, /^ukc_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
  });

  it('anonymous curl /v2/ answers 401 with the Bearer token-flow challenge', async (t) => {
    if (!tools) return t.skip('skopeo, umoci or curl not installed');
    const r = await run('curl', ['-s', '-i', `${url}/v2/`]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^HTTP\/1\.1 401 /);
    assert.match(r.stdout, new RegExp(`\\r\\nWWW-Authenticate: Bearer realm="${url}/v2/token",service="ukc-registry"\\r\\n`, 'i'));
    assert.match(r.stdout, /"code":"UNAUTHORIZED"/);
  });

  it('skopeo --dest-creds alice:<token> pushes alice/x', async (t) => {
    if (!tools) return t.skip('skopeo, umoci or curl not installed');
    const r = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${tok.alice!}`, `oci:${join(work, 'img')}:v1`, `docker://${host}/alice/x:v1`]);
    assert.equal(r.code, 0, r.stderr);
    const tags = await rawRequest(url, 'GET', '/v2/alice/x/tags/list', { headers: rootAuth() });
    assert.deepEqual(JSON.parse(tags.body.toString()), { name: 'alice/x', tags: ['v1'] });
    const back = await skopeo(['inspect', '--tls-verify=false', '--creds', `alice:${tok.alice!}`, `docker://${host}/alice/x:v1`]);
    assert.equal(back.code, 0, back.stderr);
  });

  it('skopeo --dest-creds alice:<token> to bob/x is refused with 403, and nothing appears under bob/x', async (t) => {
    if (!tools) return t.skip('skopeo, umoci or curl not installed');
    const r = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${tok.alice!}`, `oci:${join(work, 'img')}:v1`, `docker://${host}/bob/x:v1`]);
    assert.notEqual(r.code, 0);
    // skopeo's first request there is a HEAD (no body), which it reports by status.
    assert.match(r.stderr, /bob\/x: 403 \(Forbidden\)|denied/);
    const tags = await rawRequest(url, 'GET', '/v2/bob/x/tags/list', { headers: rootAuth() });
    assert.equal(tags.status, 404);
    assert.equal(errorCode(tags), 'NAME_UNKNOWN');
    // The same refusal as the OCI error body, on the upload route itself.
    const start = await rawRequest(url, 'POST', '/v2/bob/x/blobs/uploads/', {
      headers: { Authorization: `Basic ${Buffer.from(`alice:${tok.alice!}`).toString('base64')}` },
    });
    assert.equal(start.status, 403);
    assert.equal(errorCode(start), 'DENIED');
  });

  it('a pull-only token pulls alice/x but cannot push (skopeo reports denied)', async (t) => {
    if (!tools) return t.skip('skopeo, umoci or curl not installed');
    const pull = await skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `alice:${tok.alicePull!}`, `docker://${host}/alice/x:v1`]);
    assert.equal(pull.code, 0, pull.stderr);
    const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${tok.alicePull!}`, `oci:${join(work, 'img')}:v1`, `docker://${host}/alice/y:v1`]);
    assert.notEqual(push.code, 0);
    assert.match(push.stderr, /denied/);
    assert.equal((await rawRequest(url, 'GET', '/v2/alice/y/tags/list', { headers: rootAuth() })).status, 404);
  });

  it('a registry token for alice/x does not read alice/b (skopeo --registry-token)', async (t) => {
    if (!tools) return t.skip('skopeo, umoci or curl not installed');
    const copy = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `alice:${tok.alice!}`, `oci:${join(work, 'img')}:v1`, `docker://${host}/alice/b:v1`]);
    assert.equal(copy.code, 0, copy.stderr);
    const q = new URLSearchParams({ service: 'ukc-registry', scope: 'repository:alice/x:pull' });
    const curl = await run('curl', ['-s', '-u', `alice:${tok.alice!}`, `${url}/v2/token?${q}`]);
    const jwt = (JSON.parse(curl.stdout) as { token: string }).token;
    assert.deepEqual(parseJwt(jwt).claims.access, [{ type: 'repository', name: 'alice/x', actions: ['pull'] }]);
    const a = await skopeo(['inspect', '--raw', '--tls-verify=false', '--registry-token', jwt, `docker://${host}/alice/x:v1`]);
    assert.equal(a.code, 0, a.stderr);
    const b = await skopeo(['inspect', '--raw', '--tls-verify=false', '--registry-token', jwt, `docker://${host}/alice/b:v1`]);
    assert.notEqual(b.code, 0);
    assert.match(b.stderr, /unauthorized|401/i);
  });

  it('alg none and a forged key reusing the trusted kid are refused by the real server (401 invalid_token)', async (t) => {
    if (!tools) return t.skip('skopeo, umoci or curl not installed');
    const q = new URLSearchParams({ service: 'ukc-registry', scope: 'repository:alice/x:pull' });
    const good = parseJwt((JSON.parse((await run('curl', ['-s', '-u', `alice:${tok.alice!}`, `${url}/v2/token?${q}`])).stdout) as { token: string }).token);
    const claims = { ...good.claims, access: [{ type: 'repository', name: 'bob/x', actions: ['pull', 'push'] }] };
    const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');
    const forgedKey: SigningKey = { ...generateSigningKey('EdDSA'), kid: good.header.kid };
    const hostile: Record<string, string> = {
      'alg none': `${b64({ alg: 'none', kid: good.header.kid, typ: 'JWT' })}.${b64(claims)}.`,
      'forged kid': signJwt(claims, forgedKey),
    };
    for (const [name, text] of Object.entries(hostile)) {
      const r = await run('curl', ['-s', '-i', '-X', 'POST', '-H', `Authorization: Bearer ${text}`, `${url}/v2/bob/x/blobs/uploads/`]);
      assert.match(r.stdout, /^HTTP\/1\.1 401 /, name);
      assert.match(r.stdout, /error="invalid_token"/, name);
      const s = await skopeo(['inspect', '--raw', '--tls-verify=false', '--registry-token', text, `docker://${host}/alice/x:v1`]);
      assert.notEqual(s.code, 0, name);
    }
    assert.equal((await rawRequest(url, 'GET', '/v2/bob/x/tags/list', { headers: rootAuth() })).status, 404, 'nothing written');
  });
});
