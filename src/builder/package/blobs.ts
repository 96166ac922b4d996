/**
 * A content-addressed directory of blobs the builder produces or pulls (layers,
 * configs, manifests) before they are written to an output.
 *
 * Layout:
 *   <root>/sha256/<hex>      one file per blob, named by the digest of its bytes
 *   <root>/tmp/<uuid>        in-flight writes, renamed into place once hashed
 *
 * Invariant: a file under sha256/ always holds exactly the bytes its name says
 * (it is written to tmp/, hashed while written, fsynced, then renamed).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { Digester, digestOf, parseDigest, type Digest } from '../../oci/index.js';
import { fsyncFile } from '../../util/index.js';

export interface StoredBlob {
  digest: Digest;
  size: number;
  path: string;
}

export class BlobDir {
  /** Blobs this instance added (not there before): what a failed build takes back (`discardCreated`). */
  private readonly created = new Set<string>();

  constructor(readonly root: string) {}

  /** Removes every blob this instance added; a blob another writer added meanwhile is the same bytes, and goes too. */
  async discardCreated(): Promise<number> {
    let n = 0;
    for (const path of this.created) {
      await rm(path, { force: true });
      n++;
    }
    this.created.clear();
    return n;
  }

  pathOf(digest: Digest): string {
    return join(this.root, digest.algorithm, digest.hex);
  }

  async has(digest: Digest): Promise<StoredBlob | undefined> {
    const path = this.pathOf(digest);
    try {
      const st = await stat(path);
      return { digest, size: st.size, path };
    } catch {
      return undefined;
    }
  }

  /** A fresh temp path inside this store (same filesystem, so rename is atomic). */
  async tempPath(): Promise<string> {
    await mkdir(join(this.root, 'tmp'), { recursive: true });
    return join(this.root, 'tmp', randomUUID());
  }

  /** Stores a small document held in memory. */
  async putBytes(data: Uint8Array | string): Promise<StoredBlob> {
    const digest = digestOf(data);
    const existing = await this.has(digest);
    if (existing) return existing;
    const tmp = await this.tempPath();
    await writeFile(tmp, data);
    await fsyncFile(tmp);
    return this.commit(tmp, digest, typeof data === 'string' ? Buffer.byteLength(data) : data.length);
  }

  /** Streams `source` into the store, hashing on the way. */
  async putStream(source: Readable): Promise<StoredBlob> {
    const tmp = await this.tempPath();
    const digester = new Digester();
    try {
      await pipeline(
        source,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            digester.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(tmp),
      );
      await fsyncFile(tmp);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    return this.commit(tmp, digester.digest(), digester.size);
  }

  /** Moves an already written file into the store under its digest (hashing it first). */
  async putFile(path: string): Promise<StoredBlob> {
    const digester = new Digester();
    let size = 0;
    for await (const chunk of createReadStream(path)) {
      digester.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
    return this.commit(path, digester.digest(), size);
  }

  private async commit(tmp: string, digest: Digest, size: number): Promise<StoredBlob> {
    const final = this.pathOf(digest);
    await mkdir(join(this.root, digest.algorithm), { recursive: true });
    const existed = await stat(final).then(() => true, () => false);
    await rename(tmp, final);
    if (!existed) this.created.add(final);
    return { digest, size, path: final };
  }
}

export function blobDigest(text: string): Digest {
  return parseDigest(text);
}
