// Every endpoint's success and error answers, in-process over loopback.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { digestOf } from '../oci/digest.js';
import { RegistryError } from './errors.js';
import { errorCode, pushBlob, pushImage, rawRequest, startTestRegistry, type TestRegistry } from './testkit.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

let reg: TestRegistry;
let base: string;
before(async () => {
  reg = await startTestRegistry({ limits: { maxPageSize: 50 } });
  base = reg.url;
});
after(() => reg.close());

describe('base and routing', () => {
  it('GET /v2/ answers 200 with the API version header', async () => {
    const res = await rawRequest(base, 'GET', '/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers['docker-distribution-api-version'], 'registry/2.0');
  });
  it('unknown paths answer 404 and wrong methods 405, in the error envelope', async () => {
    const a = await rawRequest(base, 'GET', '/v3/nothing');
    assert.equal(a.status, 404);
    assert.equal(errorCode(a), 'UNSUPPORTED');
    const b = await rawRequest(base, 'POST', '/v2/a/tags/list');
    assert.equal(b.status, 405);
    assert.ok(String(b.headers.allow).includes('GET'));
  });
  it('invalid repository names answer 400 NAME_INVALID', async () => {
    for (const name of ['UPPER/case', 'a..b', 'a/-b', 'a//b', `${'a'.repeat(256)}`, 'a%2F..%2Fb']) {
      const res = await rawRequest(base, 'GET', `/v2/${name}/tags/list`);
      assert.equal(res.status, 400, name);
      assert.equal(errorCode(res), 'NAME_INVALID', name);
    }
  });
});

describe('blobs', () => {
  it('monolithic POST ?digest= stores a blob; HEAD, GET, Range, DELETE behave', async () => {
    const data = Buffer.from('0123456789abcdef');
    const digest = digestOf(data).text;
    const post = await rawRequest(base, 'POST', `/v2/b/mono/blobs/uploads/?digest=${digest}`, { body: data });
    assert.equal(post.status, 201);
    assert.equal(post.headers.location, `/v2/b/mono/blobs/${digest}`);
    assert.equal(post.headers['docker-content-digest'], digest);

    const head = await rawRequest(base, 'HEAD', `/v2/b/mono/blobs/${digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '16');
    assert.equal(head.headers['docker-content-digest'], digest);
    assert.equal(head.body.length, 0);

    const get = await rawRequest(base, 'GET', `/v2/b/mono/blobs/${digest}`);
    assert.equal(get.status, 200);
    assert.deepEqual(get.body, data);

    const part = await rawRequest(base, 'GET', `/v2/b/mono/blobs/${digest}`, { headers: { Range: 'bytes=2-5' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers['content-range'], 'bytes 2-5/16');
    assert.equal(part.body.toString(), '2345');
    const suffix = await rawRequest(base, 'GET', `/v2/b/mono/blobs/${digest}`, { headers: { Range: 'bytes=-3' } });
    assert.equal(suffix.body.toString(), 'def');
    const bad = await rawRequest(base, 'GET', `/v2/b/mono/blobs/${digest}`, { headers: { Range: 'bytes=16-20' } });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers['content-range'], 'bytes */16');

    const del = await rawRequest(base, 'DELETE', `/v2/b/mono/blobs/${digest}`);
    assert.equal(del.status, 202);
    const gone = await rawRequest(base, 'GET', `/v2/b/mono/blobs/${digest}`);
    assert.equal(gone.status, 404);
    assert.equal(errorCode(gone), 'BLOB_UNKNOWN');
    const again = await rawRequest(base, 'DELETE', `/v2/b/mono/blobs/${digest}`);
    assert.equal(again.status, 404);
  });

  it('unknown blobs answer 404 BLOB_UNKNOWN (HEAD without a body)', async () => {
    const d = `sha256:${'e'.repeat(64)}`;
    const get = await rawRequest(base, 'GET', `/v2/b/none/blobs/${d}`);
    assert.equal(get.status, 404);
    assert.equal(errorCode(get), 'BLOB_UNKNOWN');
    const head = await rawRequest(base, 'HEAD', `/v2/b/none/blobs/${d}`);
    assert.equal(head.status, 404);
    assert.equal(head.body.length, 0);
  });
});

describe('upload sessions', () => {
  it('POST opens a session with Location, Docker-Upload-UUID and Range', async () => {
    const res = await rawRequest(base, 'POST', '/v2/u/open/blobs/uploads/');
    assert.equal(res.status, 202);
    const id = String(res.headers['docker-upload-uuid']);
    assert.match(id, /^[0-9a-f-]{36}$/);
    assert.equal(res.headers.location, `/v2/u/open/blobs/uploads/${id}`);
    assert.equal(res.headers.range, '0-0');
    const status = await rawRequest(base, 'GET', `/v2/u/open/blobs/uploads/${id}`);
    assert.equal(status.status, 204);
    assert.equal(status.headers.range, '0-0');
    const cancel = await rawRequest(base, 'DELETE', `/v2/u/open/blobs/uploads/${id}`);
    assert.equal(cancel.status, 204);
    const after = await rawRequest(base, 'GET', `/v2/u/open/blobs/uploads/${id}`);
    assert.equal(after.status, 404);
    assert.equal(errorCode(after), 'BLOB_UPLOAD_UNKNOWN');
  });

  it('chunked PATCH with Content-Range, progress, then PUT with a final chunk', async () => {
    const data = Buffer.from('abcdefghij-final');
    const digest = digestOf(data).text;
    const start = await rawRequest(base, 'POST', '/v2/u/chunks/blobs/uploads/');
    const loc = String(start.headers.location);
    const p1 = await rawRequest(base, 'PATCH', loc, { body: data.subarray(0, 5), headers: { 'Content-Range': '0-4' } });
    assert.equal(p1.status, 202);
    assert.equal(p1.headers.range, '0-4');
    // A repeated chunk and a gap are refused with 416 and the true Range.
    const again = await rawRequest(base, 'PATCH', loc, { body: data.subarray(0, 5), headers: { 'Content-Range': '0-4' } });
    assert.equal(again.status, 416);
    assert.equal(again.headers.range, '0-4');
    const gap = await rawRequest(base, 'PATCH', loc, { body: data.subarray(7, 10), headers: { 'Content-Range': '7-9' } });
    assert.equal(gap.status, 416);
    assert.equal(gap.headers.range, '0-4');
    const p2 = await rawRequest(base, 'PATCH', loc, { body: data.subarray(5, 10), headers: { 'Content-Range': '5-9' } });
    assert.equal(p2.status, 202);
    assert.equal(p2.headers.range, '0-9');
    // A streamed PATCH without Content-Range appends at the end.
    const p3 = await rawRequest(base, 'PATCH', loc, { body: data.subarray(10, 11) });
    assert.equal(p3.headers.range, '0-10');
    const status = await rawRequest(base, 'GET', loc);
    assert.equal(status.headers.range, '0-10');
    const put = await rawRequest(base, 'PUT', `${loc}?digest=${digest}`, { body: data.subarray(11) });
    assert.equal(put.status, 201);
    assert.equal(put.headers.location, `/v2/u/chunks/blobs/${digest}`);
    const get = await rawRequest(base, 'GET', `/v2/u/chunks/blobs/${digest}`);
    assert.deepEqual(get.body, data);
    const done = await rawRequest(base, 'GET', loc);
    assert.equal(done.status, 404, 'a committed session is gone');
  });

  it('PUT without a digest, or with a malformed one, is DIGEST_INVALID and keeps the session', async () => {
    const start = await rawRequest(base, 'POST', '/v2/u/nodigest/blobs/uploads/');
    const loc = String(start.headers.location);
    const a = await rawRequest(base, 'PUT', loc);
    assert.equal(a.status, 400);
    assert.equal(errorCode(a), 'DIGEST_INVALID');
    const b = await rawRequest(base, 'PUT', `${loc}?digest=sha256:xyz`);
    assert.equal(errorCode(b), 'DIGEST_INVALID');
    assert.equal((await rawRequest(base, 'GET', loc)).status, 204);
  });

  it('Content-Length disagreeing with Content-Range is SIZE_INVALID', async () => {
    const start = await rawRequest(base, 'POST', '/v2/u/size/blobs/uploads/');
    const res = await rawRequest(base, 'PATCH', String(start.headers.location), {
      body: 'abc',
      headers: { 'Content-Range': '0-9' },
    });
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'SIZE_INVALID');
  });

  it('cross-repository mount: 201 when linked in from, else a plain 202 upload', async () => {
    const digest = await pushBlob(base, 'm/source', 'mount me');
    const ok = await rawRequest(base, 'POST', `/v2/m/target/blobs/uploads/?mount=${digest}&from=m/source`);
    assert.equal(ok.status, 201);
    assert.equal(ok.headers.location, `/v2/m/target/blobs/${digest}`);
    assert.equal((await rawRequest(base, 'HEAD', `/v2/m/target/blobs/${digest}`)).status, 200);
    const missing = await rawRequest(base, 'POST', `/v2/m/other/blobs/uploads/?mount=${digestOf('nope').text}&from=m/source`);
    assert.equal(missing.status, 202);
    assert.ok(missing.headers['docker-upload-uuid']);
  });
});

describe('manifests', () => {
  it('PUT by tag, GET/HEAD by tag and digest, then delete tag and manifest', async () => {
    const img = await pushImage(base, 'mf/app', 'v1');
    const get = await rawRequest(base, 'GET', '/v2/mf/app/manifests/v1');
    assert.equal(get.status, 200);
    assert.equal(get.headers['content-type'], OCI_MANIFEST);
    assert.equal(get.headers['docker-content-digest'], img.digest);
    assert.deepEqual(get.body, img.bytes, 'served byte-identical');
    const head = await rawRequest(base, 'HEAD', `/v2/mf/app/manifests/${img.digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], String(img.bytes.length));
    // The same bytes by digest: Location and digest headers.
    const put = await rawRequest(base, 'PUT', `/v2/mf/app/manifests/${img.digest}`, {
      body: img.bytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers.location, `/v2/mf/app/manifests/${img.digest}`);
    assert.equal(put.headers['docker-content-digest'], img.digest);
    // The manifest is also readable as a blob of its repository.
    assert.equal((await rawRequest(base, 'HEAD', `/v2/mf/app/blobs/${img.digest}`)).status, 200);

    const delTag = await rawRequest(base, 'DELETE', '/v2/mf/app/manifests/v1');
    assert.equal(delTag.status, 202);
    assert.equal((await rawRequest(base, 'GET', '/v2/mf/app/manifests/v1')).status, 404);
    assert.equal((await rawRequest(base, 'GET', `/v2/mf/app/manifests/${img.digest}`)).status, 200);
    const del = await rawRequest(base, 'DELETE', `/v2/mf/app/manifests/${img.digest}`);
    assert.equal(del.status, 202);
    const gone = await rawRequest(base, 'GET', `/v2/mf/app/manifests/${img.digest}`);
    assert.equal(gone.status, 404);
    assert.equal(errorCode(gone), 'MANIFEST_UNKNOWN');
    assert.equal((await rawRequest(base, 'DELETE', `/v2/mf/app/manifests/${img.digest}`)).status, 404);
  });

  it('PUT naming a blob the repository lacks is MANIFEST_BLOB_UNKNOWN', async () => {
    const config = await pushBlob(base, 'mf/missing', '{}');
    const absent = digestOf('never pushed').text;
    const doc = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: absent, size: 12 }],
    };
    const res = await rawRequest(base, 'PUT', '/v2/mf/missing/manifests/v1', {
      body: JSON.stringify(doc),
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
    assert.equal((await rawRequest(base, 'GET', '/v2/mf/missing/manifests/v1')).status, 404);
  });

  it('an index needs its child manifests present; with them it is accepted', async () => {
    const child = await pushImage(base, 'mf/idx', 'child');
    const idx = (digests: string[]) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: digests.map((d) => ({ mediaType: OCI_MANIFEST, digest: d, size: child.bytes.length })),
      });
    const bad = await rawRequest(base, 'PUT', '/v2/mf/idx/manifests/all', {
      body: idx([child.digest, digestOf('absent manifest').text]),
      headers: { 'Content-Type': OCI_INDEX },
    });
    assert.equal(errorCode(bad), 'MANIFEST_BLOB_UNKNOWN');
    const good = await rawRequest(base, 'PUT', '/v2/mf/idx/manifests/all', {
      body: idx([child.digest]),
      headers: { 'Content-Type': OCI_INDEX },
    });
    assert.equal(good.status, 201);
    const get = await rawRequest(base, 'GET', '/v2/mf/idx/manifests/all');
    assert.equal(get.headers['content-type'], OCI_INDEX);
  });

  it('PUT by a digest the body does not hash to is DIGEST_INVALID; invalid tags are TAG_INVALID', async () => {
    const img = await pushImage(base, 'mf/lie', 'v1');
    const res = await rawRequest(base, 'PUT', `/v2/mf/lie/manifests/${digestOf('x').text}`, {
      body: img.bytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(res.status, 400);
    assert.equal(errorCode(res), 'DIGEST_INVALID');
    const tag = await rawRequest(base, 'PUT', `/v2/mf/lie/manifests/-bad`, { body: img.bytes, headers: { 'Content-Type': OCI_MANIFEST } });
    assert.equal(errorCode(tag), 'TAG_INVALID');
    const long = await rawRequest(base, 'GET', `/v2/mf/lie/manifests/${'t'.repeat(129)}`);
    assert.equal(errorCode(long), 'TAG_INVALID');
  });

  it('a subject gets the OCI-Subject header and shows in the referrers API, filterable', async () => {
    const subject = await pushImage(base, 'rf/app', 'v1');
    const subjectDesc = { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.bytes.length };
    const empty = await rawRequest(base, 'GET', `/v2/rf/app/referrers/${subject.digest}`);
    assert.equal(empty.status, 200);
    assert.deepEqual(JSON.parse(empty.body.toString()).manifests, []);

    const emptyConfig = await pushBlob(base, 'rf/app', '{}');
    const sig = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: 'application/vnd.example.sig',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyConfig, size: 2 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: subject.layer, size: 12 }],
      subject: subjectDesc,
      annotations: { 'org.example.signed-by': 'alice' },
    };
    const sigBytes = Buffer.from(JSON.stringify(sig));
    const sigDigest = digestOf(sigBytes).text;
    const put = await rawRequest(base, 'PUT', `/v2/rf/app/manifests/${sigDigest}`, {
      body: sigBytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });
    assert.equal(put.status, 201);
    assert.equal(put.headers['oci-subject'], subject.digest);
    // A referrer whose artifactType comes from its config media type.
    const sbom = { ...sig, artifactType: undefined, config: { mediaType: 'application/vnd.example.sbom', digest: emptyConfig, size: 2 } };
    const sbomBytes = Buffer.from(JSON.stringify(sbom));
    await rawRequest(base, 'PUT', `/v2/rf/app/manifests/${digestOf(sbomBytes).text}`, {
      body: sbomBytes,
      headers: { 'Content-Type': OCI_MANIFEST },
    });

    const all = await rawRequest(base, 'GET', `/v2/rf/app/referrers/${subject.digest}`);
    assert.equal(all.headers['content-type'], OCI_INDEX);
    const index = JSON.parse(all.body.toString()) as { schemaVersion: number; manifests: { digest: string; artifactType: string; annotations?: Record<string, string> }[] };
    assert.equal(index.schemaVersion, 2);
    assert.deepEqual(index.manifests.map((m) => m.artifactType).sort(), ['application/vnd.example.sbom', 'application/vnd.example.sig']);
    const sigEntry = index.manifests.find((m) => m.digest === sigDigest);
    assert.deepEqual(sigEntry?.annotations, { 'org.example.signed-by': 'alice' });

    const filtered = await rawRequest(base, 'GET', `/v2/rf/app/referrers/${subject.digest}?artifactType=application/vnd.example.sig`);
    assert.equal(filtered.headers['oci-filters-applied'], 'artifactType');
    assert.deepEqual(JSON.parse(filtered.body.toString()).manifests.map((m: { digest: string }) => m.digest), [sigDigest]);

    const unknownRepo = await rawRequest(base, 'GET', `/v2/rf/nothing/referrers/${subject.digest}`);
    assert.equal(unknownRepo.status, 200, 'never 404');
    const badDigest = await rawRequest(base, 'GET', '/v2/rf/app/referrers/sha256:nothex');
    assert.equal(errorCode(badDigest), 'DIGEST_INVALID');
  });
});

describe('listings', () => {
  it('tags list pages with n and last and a Link header; unknown repo is NAME_UNKNOWN', async () => {
    const img = await pushImage(base, 'tl/app', 'a');
    for (const tag of ['b', 'c', 'd']) {
      const r = await rawRequest(base, 'PUT', `/v2/tl/app/manifests/${tag}`, { body: img.bytes, headers: { 'Content-Type': OCI_MANIFEST } });
      assert.equal(r.status, 201);
    }
    const all = await rawRequest(base, 'GET', '/v2/tl/app/tags/list');
    assert.deepEqual(JSON.parse(all.body.toString()), { name: 'tl/app', tags: ['a', 'b', 'c', 'd'] });
    assert.equal(all.headers.link, undefined);
    const p1 = await rawRequest(base, 'GET', '/v2/tl/app/tags/list?n=2');
    assert.deepEqual(JSON.parse(p1.body.toString()).tags, ['a', 'b']);
    assert.equal(p1.headers.link, '</v2/tl/app/tags/list?n=2&last=b>; rel="next"');
    const p2 = await rawRequest(base, 'GET', '/v2/tl/app/tags/list?n=2&last=b');
    assert.deepEqual(JSON.parse(p2.body.toString()).tags, ['c', 'd']);
    assert.equal(p2.headers.link, undefined);
    const zero = await rawRequest(base, 'GET', '/v2/tl/app/tags/list?n=0');
    assert.deepEqual(JSON.parse(zero.body.toString()).tags, []);
    const unknown = await rawRequest(base, 'GET', '/v2/tl/nothing/tags/list');
    assert.equal(unknown.status, 404);
    assert.equal(errorCode(unknown), 'NAME_UNKNOWN');
  });

  it('catalog lists repositories with paging', async () => {
    await pushBlob(base, 'zz/one', 'x');
    await pushBlob(base, 'zz/two', 'y');
    const all = JSON.parse((await rawRequest(base, 'GET', '/v2/_catalog')).body.toString()) as { repositories: string[] };
    assert.ok(all.repositories.includes('zz/one') && all.repositories.includes('zz/two'));
    assert.deepEqual([...all.repositories].sort(), all.repositories);
    const p = await rawRequest(base, 'GET', '/v2/_catalog?n=1&last=zz/one');
    assert.deepEqual(JSON.parse(p.body.toString()).repositories, ['zz/two']);
  });
});

describe('options', () => {
  it('with deletes disabled, DELETE answers 405 UNSUPPORTED and changes nothing', async () => {
    const r = await startTestRegistry({ deleteEnabled: false });
    try {
      const img = await pushImage(r.url, 'nd/app', 'v1');
      for (const path of [`/v2/nd/app/manifests/${img.digest}`, '/v2/nd/app/manifests/v1', `/v2/nd/app/blobs/${img.layer}`]) {
        const res = await rawRequest(r.url, 'DELETE', path);
        assert.equal(res.status, 405, path);
        assert.equal(errorCode(res), 'UNSUPPORTED');
      }
      assert.equal((await rawRequest(r.url, 'GET', '/v2/nd/app/manifests/v1')).status, 200);
    } finally {
      await r.close();
    }
  });

  it('an authorizer decides from the route and can deny; mount without pull on from is a plain upload', async () => {
    const seen: string[] = [];
    const r = await startTestRegistry({
      authorizer: (req, access) => {
        seen.push(`${access.repository ?? '-'}:${access.actions.join(',')}`);
        if (req.headers.authorization !== 'Bearer ok') {
          throw new RegistryError('UNAUTHORIZED', { headers: { 'WWW-Authenticate': 'Bearer realm="test"' } });
        }
        if (access.repository === 'secret/repo' && access.actions.includes('pull')) {
          throw new RegistryError('DENIED');
        }
        return { name: 'tester', anonymous: false };
      },
    });
    try {
      const anon = await rawRequest(r.url, 'GET', '/v2/');
      assert.equal(anon.status, 401);
      assert.equal(anon.headers['www-authenticate'], 'Bearer realm="test"');
      const auth = { Authorization: 'Bearer ok' };
      const denied = await rawRequest(r.url, 'GET', '/v2/secret/repo/tags/list', { headers: auth });
      assert.equal(denied.status, 403);
      assert.equal(errorCode(denied), 'DENIED');
      // Seed a blob in secret/repo (push allowed), then try to mount it elsewhere.
      const data = Buffer.from('secret bytes');
      const digest = digestOf(data).text;
      const put = await rawRequest(r.url, 'POST', `/v2/secret/repo/blobs/uploads/?digest=${digest}`, { body: data, headers: auth });
      assert.equal(put.status, 201);
      const mount = await rawRequest(r.url, 'POST', `/v2/mine/repo/blobs/uploads/?mount=${digest}&from=secret/repo`, { headers: auth });
      assert.equal(mount.status, 202, 'no pull on from: a plain upload, revealing nothing');
      assert.ok(seen.includes('secret/repo:push') && seen.includes('mine/repo:push') && seen.includes('-:'));
    } finally {
      await r.close();
    }
  });
});

