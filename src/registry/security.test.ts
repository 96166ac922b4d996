// Hostile-input classes from docs reference/security-cases.md (rows 4, 5, 6, 7, 9, 11, 12), one named test each.
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { digestOf, parseDigest } from '../oci/digest.js';
import { collectGarbage } from './gc.js';
import { registryCommand } from './command.js';
import { PassThrough } from 'node:stream';
import { errorCode, pushBlob, pushImage, rawRequest, startTestRegistry, type TestRegistry } from './testkit.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let reg: TestRegistry;
before(async () => {
  reg = await startTestRegistry({ limits: { maxPageSize: 100, maxManifestBytes: 4 * 1024 * 1024 } });
});
after(() => reg.close());

async function storedBlobs(dataDir: string): Promise<string[]> {
  const out: string[] = [];
  const root = join(dataDir, 'blobs', 'sha256');
  for (const p of await readdir(root).catch(() => [] as string[])) {
    for (const n of await readdir(join(root, p))) out.push(n);
  }
  return out.sort();
}

describe('row 4: unvalidated digests (CVE-2024-3727)', () => {
  const hostile = [
    'sha256:../../../../etc/passwd',
    `sha256:${'A'.repeat(64)}`,
    'sha256:abc',
    `sha256:${'a'.repeat(65)}`,
    `md5:${'a'.repeat(32)}`,
    'sha256:%2e%2e%2fx',
    'a..b',
  ];
  it('hostile digests get 400 DIGEST_INVALID on every digest-taking route, touching no file', async () => {
    const before = await storedBlobs(reg.dataDir);
    for (const d of hostile) {
      const q = encodeURIComponent(d);
      const answers = [
        await rawRequest(reg.url, 'GET', `/v2/h/app/blobs/${q}`),
        await rawRequest(reg.url, 'DELETE', `/v2/h/app/blobs/${q}`),
        await rawRequest(reg.url, 'POST', `/v2/h/app/blobs/uploads/?digest=${q}`, { body: 'x' }),
        await rawRequest(reg.url, 'POST', `/v2/h/app/blobs/uploads/?mount=${q}&from=h/other`),
        await rawRequest(reg.url, 'GET', `/v2/h/app/referrers/${q}`),
      ];
      for (const res of answers) {
        // 'a..b' has no colon: as a blob path segment it is still not a digest.
        assert.equal(res.status, 400, `${d}: ${res.body.toString()}`);
        assert.equal(errorCode(res), 'DIGEST_INVALID', d);
      }
      if (d.includes(':')) {
        const m = await rawRequest(reg.url, 'GET', `/v2/h/app/manifests/${q}`);
        assert.equal(errorCode(m), 'DIGEST_INVALID', d);
      }
    }
    const start = await rawRequest(reg.url, 'POST', '/v2/h/app/blobs/uploads/');
    for (const d of hostile) {
      const res = await rawRequest(reg.url, 'PUT', `${String(start.headers.location)}?digest=${encodeURIComponent(d)}`, { body: 'x' });
      assert.equal(errorCode(res), 'DIGEST_INVALID', d);
    }
    assert.deepEqual(await storedBlobs(reg.dataDir), before);
  });
});

describe('row 5: ambiguous manifests (CVE-2021-41190)', () => {
  it('both layers and manifests, or mediaType differing from Content-Type, is 400 MANIFEST_INVALID', async () => {
    const img = await pushImage(reg.url, 'amb/app', 'v1');
    const doc = JSON.parse(img.bytes.toString()) as Record<string, unknown>;
    const cases: [string, Record<string, unknown>, string][] = [
      ['layers+manifests', { ...doc, manifests: [] }, OCI_MANIFEST],
      ['layers+manifests as index', { ...doc, mediaType: OCI_INDEX, manifests: [] }, OCI_INDEX],
      ['mediaType vs Content-Type', doc, OCI_INDEX],
      ['config in an index', { schemaVersion: 2, mediaType: OCI_INDEX, config: doc.config, manifests: [] }, OCI_INDEX],
      ['schemaVersion 1', { ...doc, schemaVersion: 1 }, OCI_MANIFEST],
    ];
    for (const [name, body, ct] of cases) {
      const res = await rawRequest(reg.url, 'PUT', '/v2/amb/app/manifests/bad', { body: JSON.stringify(body), headers: { 'Content-Type': ct } });
      assert.equal(res.status, 400, name);
      assert.equal(errorCode(res), 'MANIFEST_INVALID', name);
    }
    const junk = await rawRequest(reg.url, 'PUT', '/v2/amb/app/manifests/bad', { body: '{"schemaVersion":2,', headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(errorCode(junk), 'MANIFEST_INVALID');
    assert.equal((await rawRequest(reg.url, 'GET', '/v2/amb/app/manifests/bad')).status, 404);
  });
});

describe('row 6: digest and size lies, vanishing clients', () => {
  it('a body hashing to another digest is DIGEST_INVALID and no blob appears', async () => {
    const lie = digestOf('what I claim').text;
    const before = await storedBlobs(reg.dataDir);
    const mono = await rawRequest(reg.url, 'POST', `/v2/lie/app/blobs/uploads/?digest=${lie}`, { body: 'what I send' });
    assert.equal(mono.status, 400);
    assert.equal(errorCode(mono), 'DIGEST_INVALID');
    const start = await rawRequest(reg.url, 'POST', '/v2/lie/app/blobs/uploads/');
    const loc = String(start.headers.location);
    await rawRequest(reg.url, 'PATCH', loc, { body: 'what I send' });
    const put = await rawRequest(reg.url, 'PUT', `${loc}?digest=${lie}`);
    assert.equal(errorCode(put), 'DIGEST_INVALID');
    assert.equal((await rawRequest(reg.url, 'GET', loc)).status, 404, 'the failed session is gone with its data');
    assert.equal((await rawRequest(reg.url, 'HEAD', `/v2/lie/app/blobs/${lie}`)).status, 404);
    assert.equal((await rawRequest(reg.url, 'HEAD', `/v2/lie/app/blobs/${digestOf('what I send').text}`)).status, 404);
    assert.deepEqual(await storedBlobs(reg.dataDir), before);
    assert.deepEqual(await readdir(join(reg.dataDir, 'tmp')), []);
  });

  it('a client vanishing mid-upload leaves no blob; a PATCH session resumes from the reported Range', async () => {
    const data = Buffer.alloc(256 * 1024, 7);
    const digest = digestOf(data).text;
    const vanish = (method: string, path: string, sent: Buffer, total: number) =>
      new Promise<void>((resolve) => {
        const req = httpRequest(new URL(path, reg.url), { method, headers: { 'Content-Length': total }, agent: false });
        req.on('error', () => resolve());
        req.write(sent, () => setTimeout(() => {
          req.destroy();
          resolve();
        }, 50));
      });
    await vanish('POST', `/v2/gone/app/blobs/uploads/?digest=${digest}`, data.subarray(0, 1000), data.length);
    const start = await rawRequest(reg.url, 'POST', '/v2/gone/app/blobs/uploads/');
    const loc = String(start.headers.location);
    await rawRequest(reg.url, 'PATCH', loc, { body: data.subarray(0, 100), headers: { 'Content-Range': '0-99' } });
    await vanish('PATCH', loc, data.subarray(100, 5000), data.length - 100);
    // The server rolls the broken chunk back once it sees the socket close: poll (bounded) instead of sleeping.
    let status = await rawRequest(reg.url, 'GET', loc);
    for (let i = 0; i < 100 && status.headers.range !== '0-99'; i++) {
      await new Promise((r) => setTimeout(r, 50));
      status = await rawRequest(reg.url, 'GET', loc);
    }
    assert.equal((await rawRequest(reg.url, 'HEAD', `/v2/gone/app/blobs/${digest}`)).status, 404);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-99', 'the broken chunk was rolled back');
    const rest = await rawRequest(reg.url, 'PUT', `${loc}?digest=${digest}`, {
      body: data.subarray(100),
      headers: { 'Content-Range': `100-${data.length - 1}` },
    });
    assert.equal(rest.status, 201);
    assert.deepEqual((await rawRequest(reg.url, 'GET', `/v2/gone/app/blobs/${digest}`)).body, data);
  });
});

describe('row 7: unbounded sizes (CVE-2017-11468, CVE-2023-2253)', () => {
  it('a manifest over the cap is 413 without reading it; 4 MiB is accepted', async () => {
    const big = await rawRequest(reg.url, 'PUT', '/v2/big/app/manifests/v1', {
      body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20),
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(big.status, 413);
    assert.equal(errorCode(big), 'MANIFEST_INVALID');
    const img = await pushImage(reg.url, 'big/app', 'small');
    const doc = JSON.parse(img.bytes.toString()) as Record<string, unknown>;
    const pad = 'p'.repeat(4 * 1024 * 1024 - img.bytes.length - 100);
    const body = JSON.stringify({ ...doc, annotations: { pad } });
    assert.ok(body.length <= 4 * 1024 * 1024);
    const ok = await rawRequest(reg.url, 'PUT', '/v2/big/app/manifests/padded', { body, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(ok.status, 201);
  });

  it('a chunked (no Content-Length) manifest over the cap is cut off at the cap with 413', async () => {
    const res = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(new URL('/v2/big/app/manifests/chunked', reg.url), {
        method: 'PUT',
        headers: { 'Content-Type': OCI_MANIFEST, 'Transfer-Encoding': 'chunked' },
        agent: false,
      }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        // Bounded: at most 16 MiB, far past the 4 MiB cap.
        while (sent < 16) {
          sent++;
          if (!req.write(chunk)) return void req.once('drain', pump);
        }
        req.end();
      };
      pump();
    });
    assert.equal(res, 413);
  });

  it('n=999999999 is clamped to the configured page size', async () => {
    const img = await pushImage(reg.url, 'page/app', 't000');
    for (let i = 1; i < 105; i++) {
      await rawRequest(reg.url, 'PUT', `/v2/page/app/manifests/t${String(i).padStart(3, '0')}`, { body: img.bytes, headers: { 'Content-Type': OCI_MANIFEST } });
    }
    const res = await rawRequest(reg.url, 'GET', '/v2/page/app/tags/list?n=999999999');
    const tags = (JSON.parse(res.body.toString()) as { tags: string[] }).tags;
    assert.equal(tags.length, 100);
    assert.equal(res.headers.link, '</v2/page/app/tags/list?n=100&last=t099>; rel="next"');
    const bad = await rawRequest(reg.url, 'GET', '/v2/page/app/tags/list?n=-1');
    assert.equal(bad.status, 400);
    const catalog = await rawRequest(reg.url, 'GET', '/v2/_catalog?n=999999999');
    assert.equal(catalog.status, 200);
  });

  it('a blob above maxBlobBytes is refused with 413 and nothing stored', async () => {
    const small = await startTestRegistry({ limits: { maxBlobBytes: 1000 } });
    try {
      const data = Buffer.alloc(2000, 1);
      const mono = await rawRequest(small.url, 'POST', `/v2/s/app/blobs/uploads/?digest=${digestOf(data).text}`, { body: data });
      assert.equal(mono.status, 413);
      const start = await rawRequest(small.url, 'POST', '/v2/s/app/blobs/uploads/');
      const patch = await rawRequest(small.url, 'PATCH', String(start.headers.location), { body: data });
      assert.equal(patch.status, 413);
      assert.deepEqual(await storedBlobs(small.dataDir), []);
    } finally {
      await small.close();
    }
  });
});

describe('row 9: cross-repository leaks (zot CVE-2024-39897)', () => {
  it('mount from a repo not linking the blob is a plain 202; HEAD of a blob linked elsewhere is 404', async () => {
    const digest = await pushBlob(reg.url, 'tenant-a/private', 'tenant a secret');
    const head = await rawRequest(reg.url, 'HEAD', `/v2/tenant-b/app/blobs/${digest}`);
    assert.equal(head.status, 404);
    const get = await rawRequest(reg.url, 'GET', `/v2/tenant-b/app/blobs/${digest}`);
    assert.equal(errorCode(get), 'BLOB_UNKNOWN');
    const mount = await rawRequest(reg.url, 'POST', `/v2/tenant-b/app/blobs/uploads/?mount=${digest}&from=tenant-c/empty`);
    assert.equal(mount.status, 202);
    assert.equal((await rawRequest(reg.url, 'HEAD', `/v2/tenant-b/app/blobs/${digest}`)).status, 404);
    // A manifest cannot name it either.
    const doc = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: 15 },
      layers: [],
    };
    const put = await rawRequest(reg.url, 'PUT', '/v2/tenant-b/app/manifests/steal', { body: JSON.stringify(doc), headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(errorCode(put), 'MANIFEST_BLOB_UNKNOWN');
  });
});

describe('row 11: upload-session abuse', () => {
  it('per-principal session limit answers 429 TOOMANYREQUESTS with Retry-After', async () => {
    const r = await startTestRegistry({ limits: { maxUploadsPerPrincipal: 3, retryAfterSeconds: 17 } });
    try {
      const locs: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await rawRequest(r.url, 'POST', '/v2/lim/app/blobs/uploads/');
        assert.equal(res.status, 202);
        locs.push(String(res.headers.location));
      }
      const over = await rawRequest(r.url, 'POST', '/v2/lim/app/blobs/uploads/');
      assert.equal(over.status, 429);
      assert.equal(errorCode(over), 'TOOMANYREQUESTS');
      assert.equal(over.headers['retry-after'], '17');
      await rawRequest(r.url, 'DELETE', locs[0]!);
      assert.equal((await rawRequest(r.url, 'POST', '/v2/lim/app/blobs/uploads/')).status, 202, 'a freed slot can be reused');
    } finally {
      await r.close();
    }
  });

  it('a session id from repo A used on repo B is 404 BLOB_UPLOAD_UNKNOWN, and so is a made-up id', async () => {
    const start = await rawRequest(reg.url, 'POST', '/v2/sess/a/blobs/uploads/');
    const id = String(start.headers['docker-upload-uuid']);
    for (const method of ['GET', 'PATCH', 'PUT', 'DELETE']) {
      const res = await rawRequest(reg.url, method, `/v2/sess/b/blobs/uploads/${id}?digest=${digestOf('').text}`, { body: '' });
      assert.equal(res.status, 404, method);
      assert.equal(errorCode(res), 'BLOB_UPLOAD_UNKNOWN', method);
    }
    for (const fake of ['not-a-uuid', 'a..b', crypto.randomUUID()]) {
      const res = await rawRequest(reg.url, 'GET', `/v2/sess/a/blobs/uploads/${fake}`);
      assert.equal(errorCode(res), 'BLOB_UPLOAD_UNKNOWN', fake);
    }
    assert.equal((await rawRequest(reg.url, 'GET', `/v2/sess/a/blobs/uploads/${id}`)).status, 204, 'still alive in A');
  });

  it('out-of-order chunks answer 416 with the right Range', async () => {
    const start = await rawRequest(reg.url, 'POST', '/v2/ooo/app/blobs/uploads/');
    const loc = String(start.headers.location);
    const first = await rawRequest(reg.url, 'PATCH', loc, { body: 'later', headers: { 'Content-Range': '5-9' } });
    assert.equal(first.status, 416);
    assert.equal(first.headers.range, '0-0');
    await rawRequest(reg.url, 'PATCH', loc, { body: 'first', headers: { 'Content-Range': '0-4' } });
    const skip = await rawRequest(reg.url, 'PATCH', loc, { body: 'x', headers: { 'Content-Range': '6-6' } });
    assert.equal(skip.status, 416);
    assert.equal(skip.headers.range, '0-4');
    const malformed = await rawRequest(reg.url, 'PATCH', loc, { body: 'x', headers: { 'Content-Range': 'garbage' } });
    assert.equal(malformed.status, 416);
  });

  it('stale sessions are purged after the timeout, with their staged bytes', async () => {
    let clock = 1_000_000;
    const r = await startTestRegistry({ now: () => clock, limits: { uploadSessionTimeoutMs: 60_000, uploadPurgeIntervalMs: 0 } });
    try {
      const stale = await rawRequest(r.url, 'POST', '/v2/purge/app/blobs/uploads/');
      await rawRequest(r.url, 'PATCH', String(stale.headers.location), { body: 'stale bytes' });
      clock += 30_000;
      const fresh = await rawRequest(r.url, 'POST', '/v2/purge/app/blobs/uploads/');
      clock += 40_000;
      assert.equal(await r.server.registry.service.purgeStaleUploads(), 1);
      assert.equal((await rawRequest(r.url, 'GET', String(stale.headers.location))).status, 404);
      assert.equal((await rawRequest(r.url, 'GET', String(fresh.headers.location))).status, 204);
      assert.deepEqual(await readdir(join(r.dataDir, 'uploads')), [String(fresh.headers['docker-upload-uuid'])]);
    } finally {
      await r.close();
    }
  });
});

describe('row 12: GC races', () => {
  it('a blob pushed for a manifest not yet sent survives GC within the grace period; --dry-run deletes nothing', async () => {
    const r = await startTestRegistry();
    try {
      const { blobs, metadata } = r.server.registry.service;
      const img = await pushImage(r.url, 'gc/app', 'v1');
      const orphan = await pushImage(r.url, 'gc/app', 'old');
      // Drop the second image: its config, layer and manifest become unreferenced.
      await rawRequest(r.url, 'DELETE', `/v2/gc/app/manifests/${orphan.digest}`);
      const inFlight = await pushBlob(r.url, 'gc/app', 'layer of a manifest still being pushed');
      const stored = async () => (await storedBlobs(r.dataDir)).length;
      const count = await stored();

      // Dry run far in the future: would sweep, deletes nothing.
      const dry = await collectGarbage({ blobs, metadata, gracePeriodMs: 0, dryRun: true, now: () => Date.now() + 10_000 });
      assert.ok(dry.swept.includes(orphan.digest) && dry.swept.includes(inFlight));
      assert.equal(await stored(), count);

      // Real run with a grace period: everything recent survives.
      const graceful = await collectGarbage({ blobs, metadata, gracePeriodMs: 60 * 60_000 });
      assert.deepEqual(graceful.swept, []);
      assert.equal(graceful.keptInGrace, 4, 'orphan manifest, its config, its layer, the in-flight blob');
      // The manifest that names the in-flight blob arrives: now it is referenced.
      const cfg = await pushBlob(r.url, 'gc/app', '{"late":true}');
      const late = {
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cfg, size: 13 },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: inFlight, size: 38 }],
      };
      const put = await rawRequest(r.url, 'PUT', '/v2/gc/app/manifests/late', { body: JSON.stringify(late), headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(put.status, 201);

      // Past the grace period: only the orphaned image goes.
      const swept = await collectGarbage({ blobs, metadata, gracePeriodMs: 0, now: () => Date.now() + 10_000 });
      assert.deepEqual(swept.swept.sort(), [orphan.digest, orphan.config, orphan.layer].sort());
      assert.equal((await rawRequest(r.url, 'HEAD', `/v2/gc/app/blobs/${orphan.layer}`)).status, 404, 'links went with the bytes');
      for (const d of [img.digest, img.config, img.layer, inFlight, cfg]) {
        assert.ok(await blobs.stat(parseDigest(d)), `${d} kept`);
      }
      assert.equal((await rawRequest(r.url, 'GET', '/v2/gc/app/manifests/v1')).status, 200);
      assert.equal((await rawRequest(r.url, 'GET', '/v2/gc/app/manifests/late')).status, 200);
    } finally {
      await r.close();
    }
  });

  it('`ukcd registry gc` beside a slow single-request upload leaves its streaming bytes alone', async () => {
    const r = await startTestRegistry();
    try {
      // Garbage for gc to sweep (its first removal is what opened the store and emptied tmp/).
      const garbage = await pushBlob(r.url, 'gc/slow', 'nobody names this blob');
      await new Promise((t) => setTimeout(t, 20));
      const data = Buffer.alloc(3 * 1024 * 1024, 7);
      const digest = digestOf(data).text;
      // POST ?digest= streams into tmp/: send the first half, then hold the rest back.
      let answer!: Promise<{ status: number; body: string }>;
      const started = new Promise<void>((resolve, reject) => {
        const req = httpRequest(new URL(`/v2/gc/slow/blobs/uploads/?digest=${digest}`, r.url), {
          method: 'POST',
          headers: { 'Content-Length': data.length },
          agent: false,
        });
        answer = new Promise((done, fail) => {
          req.on('response', (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => done({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', fail);
        });
        req.on('error', reject);
        req.write(data.subarray(0, data.length / 2), () => resolve());
        void answer.then(() => undefined, () => undefined);
        setTimeout(() => req.end(data.subarray(data.length / 2)), 1_500);
      });
      await started;
      const inTmp = async (): Promise<number> => (await readdir(join(r.dataDir, 'tmp')).catch(() => [])).length;
      for (let i = 0; i < 50 && (await inTmp()) === 0; i++) await new Promise((t) => setTimeout(t, 20));
      assert.equal(await inTmp(), 1, 'the upload streams into tmp/');

      const out = new PassThrough();
      const code = await registryCommand.run(['gc', '--data', r.dataDir, '--grace-period', '0'], {
        cwd: r.dataDir,
        env: {},
        stdout: out,
        stderr: out,
        signal: new AbortController().signal,
      });
      assert.equal(code, 0);
      assert.match(String(out.read()), new RegExp(`deleted ${garbage}`), 'gc did sweep');
      assert.equal(await inTmp(), 1, 'gc left the live upload in tmp/');

      const res = await answer;
      assert.equal(res.status, 201, res.body);
      const get = await rawRequest(r.url, 'GET', `/v2/gc/slow/blobs/${digest}`);
      assert.equal(get.status, 200);
      assert.equal(get.body.length, data.length);
    } finally {
      await r.close();
    }
  });
});
