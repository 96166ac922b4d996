/**
 * The one test suite every BlobStore driver must pass. Each driver's test file
 * calls `blobStoreSuite(name, factory)`; the factory gives a fresh, empty store
 * and a cleanup.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, it } from 'node:test';
import { digestOf, parseDigest } from '../oci/index.js';
import {
  BlobNotFoundError,
  DigestMismatchError,
  RangeNotSatisfiableError,
  SizeMismatchError,
  TooLargeError,
  UploadOffsetError,
} from './errors.js';
import type { BlobStore } from './types.js';

export interface DriverFixture {
  store: BlobStore;
  cleanup(): Promise<void>;
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A stream that yields `chunks` then fails, as a client vanishing mid-upload does. */
function failingStream(chunks: Buffer[]): Readable {
  let i = 0;
  return new Readable({
    read() {
      if (i < chunks.length) this.push(chunks[i++]);
      else this.destroy(new Error('client went away'));
    },
  });
}

async function allDigests(store: BlobStore): Promise<string[]> {
  const out: string[] = [];
  for await (const d of store.list()) out.push(d.text);
  return out.sort();
}

export function blobStoreSuite(driver: string, make: () => Promise<DriverFixture>): void {
  const withStore = (fn: (s: BlobStore) => Promise<void>) => async () => {
    const fx = await make();
    try {
      await fn(fx.store);
    } finally {
      await fx.cleanup();
    }
  };

  describe(`BlobStore driver suite: ${driver}`, () => {
    it('puts, stats, reads whole and by range, deletes', withStore(async (s) => {
      const data = randomBytes(300_000);
      const want = digestOf(data);
      const put = await s.put(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), { expected: want });
      assert.equal(put.digest.text, want.text);
      assert.equal(put.size, data.length);
      const st = await s.stat(want);
      assert.equal(st?.size, data.length);
      assert.ok(typeof st?.modifiedAt === 'number' && st.modifiedAt > 0);
      assert.deepEqual(await readAll(await s.open(want)), data);
      assert.deepEqual(await readAll(await s.open(want, { start: 10, end: 19 })), data.subarray(10, 20));
      assert.deepEqual(await readAll(await s.open(want, { start: 299_990, end: 10_000_000 })), data.subarray(299_990));
      await assert.rejects(s.open(want, { start: data.length, end: data.length + 5 }), RangeNotSatisfiableError);
      assert.deepEqual(await s.readBytes(want, data.length), data);
      await assert.rejects(s.readBytes(want, 10), TooLargeError);
      assert.equal(await s.delete(want), true);
      assert.equal(await s.stat(want), undefined);
      assert.equal(await s.delete(want), false);
      await assert.rejects(s.open(want), BlobNotFoundError);
    }));

    it('putting the same content twice gives one blob', withStore(async (s) => {
      const data = Buffer.from('same bytes');
      const a = await s.putBytes(data);
      const b = await s.put(Readable.from([data]));
      assert.equal(a.digest.text, b.digest.text);
      assert.deepEqual(await allDigests(s), [a.digest.text]);
      assert.deepEqual(await s.readBytes(a.digest, 100), data);
    }));

    it('serves concurrent reads of one blob', withStore(async (s) => {
      const data = randomBytes(200_000);
      const { digest } = await s.putBytes(data);
      const reads = await Promise.all(Array.from({ length: 8 }, async () => readAll(await s.open(digest))));
      for (const r of reads) assert.deepEqual(r, data);
    }));

    it('a digest or size mismatch, an oversize or a failing body leaves nothing', withStore(async (s) => {
      const data = Buffer.from('the real content');
      const lie = digestOf('something else');
      await assert.rejects(s.put(Readable.from([data]), { expected: lie }), DigestMismatchError);
      await assert.rejects(s.putBytes(data, { expected: lie }), DigestMismatchError);
      await assert.rejects(s.put(Readable.from([data]), { expectedSize: 3 }), SizeMismatchError);
      await assert.rejects(s.put(Readable.from([data]), { maxBytes: 4 }), TooLargeError);
      await assert.rejects(s.put(failingStream([data]), { expected: digestOf(data) }), /client went away/);
      assert.equal(await s.stat(lie), undefined);
      assert.equal(await s.stat(digestOf(data)), undefined);
      assert.deepEqual(await allDigests(s), []);
    }));

    it('appends staged chunks only at the current size and commits them', withStore(async (s) => {
      const id = randomUUID();
      await s.uploads.create(id);
      assert.equal(await s.uploads.size(id), 0);
      assert.equal(await s.uploads.append(id, 0, Readable.from([Buffer.from('hello ')])), 6);
      await assert.rejects(s.uploads.append(id, 0, Readable.from([Buffer.from('again')])), (e: unknown) => {
        assert.ok(e instanceof UploadOffsetError);
        assert.equal(e.currentSize, 6);
        return true;
      });
      await assert.rejects(s.uploads.append(id, 9, Readable.from([Buffer.from('gap')])), UploadOffsetError);
      // A chunk that fails midway is rolled back, so the session resumes cleanly.
      await assert.rejects(s.uploads.append(id, 6, failingStream([Buffer.from('wor')])), /client went away/);
      assert.equal(await s.uploads.size(id), 6);
      await assert.rejects(s.uploads.append(id, 6, Readable.from([Buffer.from('wo')]), { length: 5 }), SizeMismatchError);
      assert.equal(await s.uploads.size(id), 6);
      await assert.rejects(s.uploads.append(id, 6, Readable.from([Buffer.from('world')]), { maxBytes: 8 }), TooLargeError);
      assert.equal(await s.uploads.size(id), 6);
      assert.equal(await s.uploads.append(id, 6, Readable.from([Buffer.from('world')]), { length: 5 }), 11);
      assert.deepEqual(await s.uploads.list(), [id]);
      const want = digestOf('hello world');
      const got = await s.uploads.commit(id, want, 11);
      assert.equal(got.digest.text, want.text);
      assert.equal(await s.uploads.size(id), undefined);
      assert.deepEqual(await s.uploads.list(), []);
      assert.equal((await s.readBytes(want, 100)).toString(), 'hello world');
    }));

    it('a commit with the wrong digest or size removes the staged data and stores nothing', withStore(async (s) => {
      for (const [expected, size] of [[digestOf('other'), undefined], [digestOf('abc'), 4]] as const) {
        const id = randomUUID();
        await s.uploads.create(id);
        await s.uploads.append(id, 0, Readable.from([Buffer.from('abc')]));
        await assert.rejects(s.uploads.commit(id, expected, size), /does not match/);
        assert.equal(await s.uploads.size(id), undefined);
      }
      assert.deepEqual(await allDigests(s), []);
    }));

    it('aborting an upload removes it', withStore(async (s) => {
      const id = randomUUID();
      await s.uploads.create(id);
      await s.uploads.append(id, 0, Readable.from([Buffer.from('partial')]));
      await s.uploads.remove(id);
      assert.equal(await s.uploads.size(id), undefined);
      assert.deepEqual(await s.uploads.list(), []);
      assert.deepEqual(await allDigests(s), []);
    }));

    it('lists blobs and honours delete olderThan', withStore(async (s) => {
      const a = await s.putBytes(Buffer.from('a'));
      const b = await s.putBytes(Buffer.from('b'));
      const sha512 = await s.putBytes(Buffer.from('c'), { algorithm: 'sha512' });
      assert.deepEqual(await allDigests(s), [a.digest.text, b.digest.text, sha512.digest.text].sort());
      assert.equal(await s.delete(a.digest, { olderThan: 0 }), false, 'a fresh blob survives a grace period');
      assert.equal(await s.delete(a.digest, { olderThan: Date.now() + 60_000 }), true);
      assert.deepEqual(await allDigests(s), [b.digest.text, sha512.digest.text].sort());
      assert.equal(await s.stat(parseDigest(`sha256:${'0'.repeat(64)}`)), undefined);
    }));
  });
}
