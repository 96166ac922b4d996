import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, open, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { test } from 'node:test';
import { digestOf } from '../oci/digest.js';
import { blobStoreSuite } from './driver-suite.js';
import { FsBlobStore, HashingFileWriter } from './fs.js';

blobStoreSuite('filesystem', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-fsstore-'));
  return { store: new FsBlobStore(dir), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

test('filesystem driver: a restarted store rebuilds the upload hasher from the staged file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-fsstore-'));
  try {
    const id = randomUUID();
    const first = new FsBlobStore(dir);
    await first.uploads.create(id);
    await first.uploads.append(id, 0, Readable.from([Buffer.from('before restart, ')]));
    const second = new FsBlobStore(dir); // no in-memory hasher
    assert.equal(await second.uploads.size(id), 16);
    await second.uploads.append(id, 16, Readable.from([Buffer.from('after')]));
    const { digest } = await second.uploads.commit(id, digestOf('before restart, after'));
    assert.equal((await second.readBytes(digest, 100)).toString(), 'before restart, after');
    // Layout is content-addressed as documented.
    assert.deepEqual(await readdir(join(dir, 'blobs', 'sha256', digest.hex.slice(0, 2))), [digest.hex]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('filesystem driver: init clears stale temp files, ignores foreign files in blobs/', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-fsstore-'));
  try {
    const store = new FsBlobStore(dir);
    await store.init();
    await writeFile(join(dir, 'tmp', 'leftover'), 'x');
    await mkdir(join(dir, 'blobs', 'sha256', 'ab'), { recursive: true });
    await writeFile(join(dir, 'blobs', 'sha256', 'ab', 'README'), 'x');
    const again = new FsBlobStore(dir);
    await again.init();
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
    const listed: string[] = [];
    for await (const d of again.list()) listed.push(d.text);
    assert.deepEqual(listed, []);
    await assert.rejects(again.uploads.append('../../etc', 0, Readable.from([Buffer.from('x')])), /not found/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('filesystem driver: background fdatasync while receiving; its failure fails the write', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-fsstore-'));
  try {
    const chunk = Buffer.alloc(64 * 1024, 7);
    const body = (): Readable => Readable.from(Array.from({ length: 16 }, () => chunk));
    const whole = Buffer.concat(Array.from({ length: 16 }, () => chunk));

    // Real fdatasync every 256 KiB: the blob lands intact.
    const store = new FsBlobStore(dir, { syncEveryBytes: 256 * 1024 });
    const put = await store.put(body(), { expected: digestOf(whole) });
    assert.equal(put.size, whole.length);
    assert.ok((await store.readBytes(put.digest, whole.length)).equals(whole));

    // The writer starts syncs as it goes, and waits for the last before finishing.
    const fh = await open(join(dir, 'probe'), 'w');
    try {
      let inFlight = 0;
      let maxInFlight = 0;
      const writer = new HashingFileWriter(fh.fd, 0, undefined, Number.MAX_SAFE_INTEGER, 1024 * 1024, 256 * 1024, async () => {
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
      });
      await pipeline(body(), writer);
      assert.ok(writer.backgroundSyncs >= 1 && writer.backgroundSyncs <= 4, `${writer.backgroundSyncs} syncs`);
      assert.equal(maxInFlight, 1, 'never two syncs at once');
      assert.equal(inFlight, 0, 'finished only after the last sync');

      // A failing background sync (EIO) fails the stream.
      const failing = new HashingFileWriter(fh.fd, 0, undefined, Number.MAX_SAFE_INTEGER, 1024 * 1024, 64 * 1024, async () => {
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      });
      await assert.rejects(pipeline(body(), failing), /EIO/);
    } finally {
      await fh.close();
    }

  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
