import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import Database from 'better-sqlite3';
import { MissingReferencesError } from './errors.js';
import { SCHEMA_VERSION, SqliteMetadataStore } from './sqlite.js';
import type { ManifestRecord } from './types.js';

const d = (c: string): string => `sha256:${c.repeat(64)}`;

function manifest(repo: string, digest: string, over: Partial<ManifestRecord> = {}): ManifestRecord {
  return {
    repository: repo,
    digest,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    size: 100,
    createdAt: Date.now(),
    references: [{ digest: d('a'), kind: 'blob' }],
    ...over,
  };
}

test('sqlite metadata: schema, links, manifests, tags, referrers, GC marking', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-meta-'));
  try {
    const file = join(dir, 'meta.db');
    const m = new SqliteMetadataStore(file);
    assert.equal(m.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(m.db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal((m.db.prepare('SELECT version FROM schema_version').get() as { version: number }).version, SCHEMA_VERSION);

    // A manifest whose blob is not linked is refused and nothing is written.
    await assert.rejects(m.putManifest(manifest('r/one', d('m')), ['v1']), (e: unknown) => {
      assert.ok(e instanceof MissingReferencesError);
      assert.deepEqual(e.missing, [{ digest: d('a'), kind: 'blob' }]);
      return true;
    });
    assert.equal(await m.getManifest('r/one', d('m')), undefined);
    assert.equal(await m.resolveTag('r/one', 'v1'), undefined);

    await m.linkBlob('r/one', d('a'), 5);
    assert.deepEqual(await m.blobLink('r/one', d('a')), { size: 5 });
    assert.equal(await m.blobLink('r/two', d('a')), undefined);
    await m.putManifest(manifest('r/one', d('m'), { annotations: { k: 'v' } }), ['v1', 'latest']);
    await m.putManifest(
      manifest('r/one', d('s'), { subject: d('m'), artifactType: 'application/x-sig', references: [] }),
      [],
    );
    const got = await m.getManifest('r/one', d('m'));
    assert.deepEqual(got?.annotations, { k: 'v' });
    assert.deepEqual(got?.references, [{ digest: d('a'), kind: 'blob' }]);
    assert.deepEqual(await m.blobLink('r/one', d('m')), { size: 100 }, 'the manifest is linked as a blob');
    assert.equal(await m.resolveTag('r/one', 'latest'), d('m'));
    assert.deepEqual(await m.tagsOf('r/one', d('m')), ['latest', 'v1']);
    assert.deepEqual(await m.listTags('r/one'), ['latest', 'v1']);
    assert.deepEqual(await m.listTags('r/one', { n: 1 }), ['latest']);
    assert.deepEqual(await m.listTags('r/one', { n: 5, last: 'latest' }), ['v1']);
    assert.equal(await m.listTags('nope'), undefined);
    assert.deepEqual(await m.listRepositories(), ['r/one']);
    assert.deepEqual((await m.listReferrers('r/one', d('m'))).map((r) => r.digest), [d('s')]);
    assert.deepEqual(await m.listReferrers('r/one', d('m'), 'application/other'), []);
    assert.deepEqual(await m.liveDigests(), new Set([d('m'), d('s'), d('a')]));
    assert.equal(await m.releaseUnreferenced(d('a')), false, 'a referenced blob keeps its links');

    // Deleting the manifest cascades its tags and references.
    assert.equal(await m.deleteManifest('r/one', d('m')), true);
    assert.equal(await m.resolveTag('r/one', 'v1'), undefined);
    assert.equal(await m.isReferenced(d('a')), false);
    assert.equal(await m.releaseUnreferenced(d('a')), true);
    assert.equal(await m.blobLink('r/one', d('a')), undefined);

    // Upload sessions and their limits.
    await m.createUpload({ id: 'u1', repository: 'r/one', principal: 'alice', offset: 0, createdAt: 1, updatedAt: 1 });
    await m.updateUploadOffset('u1', 10, 50);
    assert.equal((await m.getUpload('u1'))?.offset, 10);
    assert.equal(await m.countUploads('alice'), 1);
    assert.deepEqual((await m.listUploads(51)).map((u) => u.id), ['u1']);
    assert.deepEqual(await m.listUploads(50), []);
    await m.completeUpload('u1', 'r/new', d('b'), 3);
    assert.equal(await m.getUpload('u1'), undefined);
    assert.deepEqual(await m.blobLink('r/new', d('b')), { size: 3 });
    await m.close();

    // Reopening keeps everything and does not re-run migrations.
    const again = new SqliteMetadataStore(file);
    assert.deepEqual(await again.listRepositories(), ['r/new', 'r/one']);
    await again.close();
    const newer = new Database(file);
    newer.prepare('UPDATE schema_version SET version = 99').run();
    newer.close();
    assert.throws(() => new SqliteMetadataStore(file), /newer than this program/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
