// Full disk: a registry whose data directory fills up during an upload answers 507
// (INSUFFICIENT_STORAGE in the spec's envelope), stays up past the drain timer that used
// to crash it, leaves no partial bytes, and works again once space is freed, without a
// restart. Both `ukcd registry` and the node's local registry (same handler, node home on
// the small filesystem). Needs root (tmpfs mounts).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../../src/oci/digest.js';
import { Readable } from 'node:stream';
import { RegistryClient, pushImage } from '../../src/client/index.js';
import { errorCode, rawRequest } from '../../src/registry/testkit.js';
import { api, cleanupEnv, newEnv, startCentral, startDaemon, startNode, stopDaemon, type Daemon, type TestEnv } from './node-support.js';

const isRoot = process.getuid?.() === 0;
const skip = isRoot ? false : 'needs root (mounts a small tmpfs)';

function mountTmpfs(dir: string, mib: number): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${mib}m,mode=0700`, 'tmpfs', dir]);
}

function unmountQuietly(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
}

/** Fills the filesystem holding `dir` until a write fails; returns the filler's path. */
function fill(dir: string): string {
  const path = join(dir, 'filler');
  const chunk = Buffer.alloc(1024 * 1024, 1);
  let written = 0;
  try {
    for (;;) {
      writeFileSync(path, chunk, { flag: 'a' });
      written++;
    }
  } catch (err) {
    assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC', `filler stopped after ${written} MiB for another reason`);
  }
  return path;
}

function filesUnder(dir: string): string[] {
  try {
    return readdirSync(dir).filter((n) => statSync(join(dir, n)).size > 0);
  } catch {
    return [];
  }
}

/**
 * The scenario both registries must pass: a blob larger than the disk (monolithic, then
 * chunked), a small blob once the disk is filled by something else, a wait past the 5 s
 * drain timer, then space freed and the same pushes succeed.
 */
async function fullDiskScenario(base: string, dataDir: string, repo: string, headers: Record<string, string>): Promise<void> {
  const big = randomBytes(48 * 1024 * 1024);
  const bigDigest = digestOf(big).text;
  const mono = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/?digest=${bigDigest}`, { body: big, headers });
  assert.equal(mono.status, 507, mono.body.toString());
  assert.equal(errorCode(mono), 'INSUFFICIENT_STORAGE');
  assert.deepEqual(filesUnder(join(dataDir, 'tmp')), [], 'the partial monolithic blob is removed');

  const start = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/`, { headers });
  assert.equal(start.status, 202);
  const loc = String(start.headers.location);
  const patch = await rawRequest(base, 'PATCH', loc, { body: big, headers: { ...headers, 'Content-Range': `0-${big.length - 1}` } });
  assert.equal(patch.status, 507, patch.body.toString());
  assert.equal(errorCode(patch), 'INSUFFICIENT_STORAGE');
  const status = await rawRequest(base, 'GET', loc, { headers });
  assert.equal(status.status, 204, 'the session survives a failed chunk');
  assert.equal(status.headers.range, '0-0', 'the failed chunk was dropped (nothing staged)');

  const filler = fill(dataDir);
  const small = randomBytes(256 * 1024);
  const smallDigest = digestOf(small).text;
  const full = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/?digest=${smallDigest}`, { body: small, headers });
  assert.equal(full.status, 507);

  // The crash came from the drain timer (5 s) firing after the answer: outlive it.
  await new Promise((r) => setTimeout(r, 6_000));
  const alive = await rawRequest(base, 'GET', '/v2/', { headers });
  assert.equal(alive.status, 200, 'the server is still up');

  rmSync(filler);
  const ok = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/?digest=${smallDigest}`, { body: small, headers });
  assert.equal(ok.status, 201, ok.body.toString());
  const chunk = await rawRequest(base, 'PATCH', loc, { body: small, headers: { ...headers, 'Content-Range': `0-${small.length - 1}` } });
  assert.equal(chunk.status, 202, chunk.body.toString());
  const done = await rawRequest(base, 'PUT', `${loc}${loc.includes('?') ? '&' : '?'}digest=${smallDigest}`, { headers });
  assert.equal(done.status, 201, done.body.toString());
  const get = await rawRequest(base, 'GET', `/v2/${repo}/blobs/${smallDigest}`, { headers });
  assert.equal(get.status, 200);
  assert.deepEqual(get.body, small);
}

describe('full disk', { skip }, () => {
  let env: TestEnv;
  const mounts: string[] = [];
  const daemons: Daemon[] = [];
  before(() => {
    env = newEnv('fulldisk');
  });
  after(async () => {
    for (const d of daemons) await stopDaemon(d);
    await cleanupEnv(env).catch(() => undefined);
    for (const m of mounts) unmountQuietly(m);
    rmSync(env.dir, { recursive: true, force: true });
  });

  it('ukcd registry: 507 in the spec envelope, stays up, works again once space is freed', async () => {
    const data = join(env.dir, 'registry-data');
    mountTmpfs(data, 24);
    mounts.push(data);
    const d = await startDaemon(['registry', '--listen', '127.0.0.1:0', '--data', data]);
    daemons.push(d);
    await fullDiskScenario(d.url, data, 'full/disk', {});
    assert.equal(d.child.exitCode, null, 'the registry process is alive');
    assert.doesNotMatch(d.output(), /TypeError|internal error/, 'a full disk is not a bug');
  });

  it("ukcd node's local registry: the same, and the node API stays up", async () => {
    const home = join(env.dir, 'node');
    mountTmpfs(home, 40);
    mounts.push(home);
    const central = await startCentral(env);
    daemons.push(central);
    const node = await startNode(env, central.url);
    daemons.push(node);
    const headers = { authorization: `Bearer ${node.token ?? ''}` };
    await fullDiskScenario(node.url, join(home, 'registry'), 'root/full', headers);
    assert.equal(node.child.exitCode, null, 'the node process is alive');
    const health = await fetch(`${node.url}/v1/instances`, { headers });
    assert.equal(health.status, 200, 'the node API still answers');
    assert.doesNotMatch(node.output(), /TypeError|internal error/, 'a full disk is not a bug');
  });
});

/** Bytes in use on the filesystem holding `dir`. */
function usedBytes(dir: string): number {
  const st = statfsSync(dir);
  return (st.blocks - st.bfree) * st.bsize;
}

describe('full disk on a node pull', { skip }, () => {
  let env: TestEnv;
  const daemons: Daemon[] = [];
  let home = '';
  before(() => {
    env = newEnv('fullpull');
  });
  after(async () => {
    for (const d of daemons) await stopDaemon(d);
    await cleanupEnv(env).catch(() => undefined);
    if (home !== '') unmountQuietly(home);
    rmSync(env.dir, { recursive: true, force: true });
  });

  it('an image that does not fit the node answers 507 ENOSPC in the envelope, is logged with its cause, and leaves no partial data', async () => {
    const central = await startCentral(env);
    daemons.push(central);
    // Two layers: the first (14 MiB) fits the node's 24 MiB, the second (16 MiB) does not. The
    // pull fails on the second; the first must not stay behind (the node used to keep it).
    const blobs = [Buffer.from('{"architecture":"x86_64","os":"kraftcloud","rootfs":{"type":"layers","diff_ids":[]},"config":{}}'), randomBytes(14 * 1024 * 1024), randomBytes(16 * 1024 * 1024)];
    const desc = (b: Buffer, mediaType: string) => ({ mediaType, digest: digestOf(b).text, size: b.length });
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: desc(blobs[0]!, 'application/vnd.oci.image.config.v1+json'),
        layers: [desc(blobs[1]!, 'application/vnd.oci.image.layer.v1.tar'), desc(blobs[2]!, 'application/vnd.oci.image.layer.v1.tar')],
      }),
    );
    const client = new RegistryClient({ baseUrl: central.url });
    await pushImage({
      client,
      repository: 'alice/too-big',
      tag: 'latest',
      manifest: { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
      blobs: (d) => {
        const b = blobs.find((x) => digestOf(x).text === d.digest)!;
        return { size: b.length, open: () => Readable.from([b]) };
      },
    });
    client.close();
    home = join(env.dir, 'node');
    mountTmpfs(home, 24);
    const node = await startNode(env, central.url);
    daemons.push(node);
    const before = usedBytes(home);
    const created = await api(node.url, 'POST', '/v1/instances', { name: 'toobig', image: 'alice/too-big:latest', memory_mb: 64, autostart: true });
    assert.equal(created.status, 507, JSON.stringify(created.body));
    assert.equal(created.body.status, 'error');
    const errors = created.body.errors as { status: number; error: number }[];
    assert.deepEqual(errors.map((e) => [e.status, e.error]), [[507, 28]], 'ENOSPC, not "internal error" (EIO)');
    assert.doesNotMatch(created.body.message ?? '', /internal error/);
    assert.deepEqual(filesUnder(join(home, 'registry', 'tmp')), [], 'no partial blob left in tmp/');
    const after = usedBytes(home);
    assert.ok(after - before < 1024 * 1024, `the failed pull left ${after - before} bytes behind`);
    assert.equal(node.child.exitCode, null, 'the node is alive');
    const list = await api(node.url, 'GET', '/v1/instances');
    assert.equal(list.status, 200);
    // The 507 is logged with its cause (the ENOSPC underneath), at error level.
    for (let i = 0; i < 50 && !/"status":507/.test(node.output()); i++) await new Promise((r) => setTimeout(r, 20));
    const line = node.output().split('\n').find((l) => l.includes('"status":507'));
    assert.ok(line, 'a log line for the 507');
    assert.match(line, /"level":"error"/);
    assert.match(line, /ENOSPC|no space left/);
    assert.doesNotMatch(node.output(), /internal error/, 'a full disk is not a bug');
  });
});
