/**
 * In-memory blob store, for tests and throwaway registries. Same contract as the
 * filesystem driver (the shared driver suite runs against both): a blob is
 * visible only after its bytes were verified; staged uploads append at exactly
 * their current size and roll back a failed chunk.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Digest, DigestAlgorithm } from '../oci/index.js';
import { parseDigest } from '../oci/index.js';
import {
  BlobNotFoundError,
  DigestMismatchError,
  RangeNotSatisfiableError,
  SizeMismatchError,
  TooLargeError,
  UploadNotFoundError,
  UploadOffsetError,
} from './errors.js';
import { KeyedMutex } from './mutex.js';
import type { AppendOptions, BlobStat, BlobStore, ByteRange, CommittedBlob, PutOptions, UploadStaging } from './types.js';

interface StoredBlob {
  data: Buffer;
  modifiedAt: number;
}

function digestBytes(data: Uint8Array, algorithm: DigestAlgorithm): Digest {
  const hex = createHash(algorithm).update(data).digest('hex');
  return Object.freeze({ algorithm, hex, text: `${algorithm}:${hex}` });
}

function verify(digest: Digest, size: number, expected?: Digest, expectedSize?: number): void {
  if (expectedSize !== undefined && size !== expectedSize) throw new SizeMismatchError(expectedSize, size);
  if (expected && expected.text !== digest.text) throw new DigestMismatchError(expected, digest);
}

async function collect(body: Readable, maxBytes: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
    n += buf.length;
    if (n > maxBytes) {
      body.destroy();
      throw new TooLargeError(maxBytes);
    }
    parts.push(buf);
  }
  return Buffer.concat(parts);
}

export class MemoryBlobStore implements BlobStore {
  readonly blobs = new Map<string, StoredBlob>();
  readonly uploads: UploadStaging;

  constructor(private readonly now: () => number = Date.now) {
    this.uploads = new MemoryUploadStaging(this);
  }

  async stat(digest: Digest): Promise<BlobStat | undefined> {
    const b = this.blobs.get(digest.text);
    return b ? { size: b.data.length, modifiedAt: b.modifiedAt } : undefined;
  }

  async open(digest: Digest, range?: ByteRange): Promise<Readable> {
    const b = this.blobs.get(digest.text);
    if (!b) throw new BlobNotFoundError(digest);
    if (!range) return Readable.from([b.data]);
    const size = b.data.length;
    if (range.start < 0 || range.end < range.start || range.start >= size) throw new RangeNotSatisfiableError(size);
    return Readable.from([b.data.subarray(range.start, Math.min(range.end, size - 1) + 1)]);
  }

  async put(body: Readable, opts: PutOptions = {}): Promise<CommittedBlob> {
    const data = await collect(body, opts.maxBytes ?? Number.MAX_SAFE_INTEGER);
    return this.putBytes(data, opts);
  }

  async putBytes(data: Uint8Array, opts: PutOptions = {}): Promise<CommittedBlob> {
    if (opts.maxBytes !== undefined && data.length > opts.maxBytes) throw new TooLargeError(opts.maxBytes);
    const digest = digestBytes(data, opts.expected?.algorithm ?? opts.algorithm ?? 'sha256');
    verify(digest, data.length, opts.expected, opts.expectedSize);
    this.commitBytes(digest, Buffer.from(data));
    return { digest, size: data.length };
  }

  commitBytes(digest: Digest, data: Buffer): void {
    this.blobs.set(digest.text, { data, modifiedAt: this.now() });
  }

  async readBytes(digest: Digest, maxBytes: number): Promise<Buffer> {
    const b = this.blobs.get(digest.text);
    if (!b) throw new BlobNotFoundError(digest);
    if (b.data.length > maxBytes) throw new TooLargeError(maxBytes);
    return Buffer.from(b.data);
  }

  async delete(digest: Digest, opts: { olderThan?: number } = {}): Promise<boolean> {
    const b = this.blobs.get(digest.text);
    if (!b) return false;
    if (opts.olderThan !== undefined && b.modifiedAt >= opts.olderThan) return false;
    return this.blobs.delete(digest.text);
  }

  async *list(): AsyncIterable<Digest> {
    for (const key of [...this.blobs.keys()].sort()) yield parseDigest(key);
  }
}

class MemoryUploadStaging implements UploadStaging {
  private readonly staged = new Map<string, Buffer>();
  private readonly lock = new KeyedMutex();

  constructor(private readonly store: MemoryBlobStore) {}

  async create(id: string): Promise<void> {
    if (this.staged.has(id)) throw new Error(`upload ${id} already exists`);
    this.staged.set(id, Buffer.alloc(0));
  }

  async size(id: string): Promise<number | undefined> {
    return this.staged.get(id)?.length;
  }

  append(id: string, offset: number, body: Readable, opts: AppendOptions = {}): Promise<number> {
    return this.lock.run(id, async () => {
      const current = this.staged.get(id);
      if (!current) throw new UploadNotFoundError(id);
      if (offset !== current.length) throw new UploadOffsetError(current.length, offset);
      const limit = opts.maxBytes === undefined ? Number.MAX_SAFE_INTEGER : opts.maxBytes - offset;
      let chunk: Buffer;
      try {
        chunk = await collect(body, Math.max(0, limit));
      } catch (err) {
        if (err instanceof TooLargeError && opts.maxBytes !== undefined) throw new TooLargeError(opts.maxBytes);
        throw err;
      }
      if (opts.length !== undefined && chunk.length !== opts.length) throw new SizeMismatchError(opts.length, chunk.length);
      const next = Buffer.concat([current, chunk]);
      this.staged.set(id, next);
      return next.length;
    });
  }

  commit(id: string, expected: Digest, expectedSize?: number): Promise<CommittedBlob> {
    return this.lock.run(id, async () => {
      const data = this.staged.get(id);
      if (!data) throw new UploadNotFoundError(id);
      const digest = digestBytes(data, expected.algorithm);
      try {
        verify(digest, data.length, expected, expectedSize);
      } catch (err) {
        this.staged.delete(id);
        throw err;
      }
      this.store.commitBytes(digest, data);
      this.staged.delete(id);
      return { digest, size: data.length };
    });
  }

  remove(id: string): Promise<void> {
    return this.lock.run(id, async () => {
      this.staged.delete(id);
    });
  }

  async list(): Promise<string[]> {
    return [...this.staged.keys()].sort();
  }
}
