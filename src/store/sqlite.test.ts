import assert from 'node:assert/strict';
import { fdatasync } from 'node:fs';
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

test('sqlite metadata: group commit acknowledges a write only after a WAL sync started after its commit', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-meta-'));
  try {
    const file = join(dir, 'meta.db');
    const observer = new Database(file);
    observer.pragma('journal_mode = WAL');
    let release: (() => void) | undefined;
    const seenAtSyncStart: number[] = [];
    const m = new SqliteMetadataStore(file, {
      syncWal: async (fd) => {
        // What is committed when the sync starts is what this sync makes durable.
        seenAtSyncStart.push((observer.prepare('SELECT count(*) AS n FROM blob_links').get() as { n: number }).n);
        await new Promise<void>((r) => (release = r));
        await new Promise<void>((resolve, reject) => fdatasync(fd, (e) => (e ? reject(e) : resolve())));
      },
    });
    try {
      assert.equal(m.db.pragma('synchronous', { simple: true }), 1, 'NORMAL: commits no longer fsync inside SQLite');
      let done = false;
      const first = m.linkBlob('r/one', d('1'), 1).then(() => (done = true));
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(seenAtSyncStart, [1]);
      assert.equal(done, false, 'not acknowledged while the sync runs');
      // Seven more writers while the first sync is in flight: they share one later sync.
      const more = Array.from({ length: 7 }, (_, i) => m.linkBlob('r/one', d(String(i + 2)), 1));
      release!();
      await first;
      await new Promise((r) => setImmediate(r));
      assert.deepEqual(seenAtSyncStart, [1, 8], 'the second sync started after all seven commits');
      release!();
      await Promise.all(more);
      assert.equal(m.walSyncs, 2);
    } finally {
      await m.close();
      observer.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sqlite metadata: a failed WAL sync fails the write and every later one', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-meta-'));
  try {
    let fail = true;
    const m = new SqliteMetadataStore(join(dir, 'meta.db'), {
      syncWal: async () => {
        if (fail) throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      },
    });
    try {
      await assert.rejects(m.linkBlob('r/one', d('1'), 1), /WAL sync failed.*EIO/);
      fail = false;
      await assert.rejects(m.createUpload({ id: 'u', repository: 'r/one', principal: 'p', offset: 0, createdAt: 1, updatedAt: 1 }), /WAL sync failed/);
      // Reads still answer.
      assert.deepEqual(await m.blobLink('r/one', d('1')), { size: 1 });
    } finally {
      await m.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sqlite metadata: commitSync sqlite keeps synchronous=FULL and no group sync', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-meta-'));
  try {
    const m = new SqliteMetadataStore(join(dir, 'meta.db'), { commitSync: 'sqlite' });
    assert.equal(m.db.pragma('synchronous', { simple: true }), 2);
    await m.linkBlob('r/one', d('1'), 1);
    assert.equal(m.walSyncs, 0);
    await m.close();
    const g = new SqliteMetadataStore(join(dir, 'meta.db'));
    await g.linkBlob('r/one', d('2'), 1);
    assert.equal(g.walSyncs, 1);
    await g.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('sqlite metadata: untag removes the tag, and the manifest only with its last tag, in one step', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-meta-untag-'));
  try {
    const m = new SqliteMetadataStore(join(dir, 'meta.db'));
    await m.linkBlob('u/app', d('a'), 5);
    await m.putManifest(manifest('u/app', d('m')), ['v1', 'latest']);
    assert.equal(await m.untag('u/app', 'nope'), undefined);
    assert.deepEqual(await m.untag('u/app', 'v1'), { digest: d('m'), manifestRemoved: false });
    assert.ok(await m.getManifest('u/app', d('m')), 'still tagged latest');
    assert.deepEqual(await m.untag('u/app', 'latest'), { digest: d('m'), manifestRemoved: true });
    assert.equal(await m.getManifest('u/app', d('m')), undefined);
    assert.deepEqual(await m.listTags('u/app'), []);
    await m.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
