/**
 * The registry's business logic, free of HTTP: route handlers parse the
 * request, call one method here, and shape the answer.
 *
 * Upload session state machine (one row in the metadata store + one staged file):
 *
 *   POST ──► open(offset=0) ──PATCH (at offset)──► open(offset+n) ──PUT ?digest──► committed (row gone, blob linked)
 *                 │                                     │
 *                 └──────── DELETE / idle timeout ──────┴──► gone (row and staged bytes removed)
 *
 * Invariants:
 *  - A session belongs to the repository it was opened in; any other
 *    repository (or a malformed id) gets BLOB_UPLOAD_UNKNOWN.
 *  - The staged file is the truth about the offset (it survives restarts);
 *    the row's offset is informational.
 *  - A blob is readable in a repository only when linked there; a manifest is
 *    accepted only when every blob and child manifest it names is linked in
 *    its repository (checked inside the metadata transaction).
 */
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { digestOf, parseDigest, type Digest } from '../oci/index.js';
import { MediaType } from '../oci/index.js';
import { parseManifest, type Descriptor } from '../oci/index.js';
import { UploadNotFoundError } from '../store/index.js';
import type { BlobStore, ByteRange, ManifestReference, MetadataStore, UploadRecord } from '../store/index.js';
import { RegistryError, uploadRange } from './errors.js';
import { isTag } from './names.js';
import type { RegistryLimits } from './options.js';

const UPLOAD_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A manifest reference from a URL: a tag, or a digest (anything with a colon). */
export type ManifestRef = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

export function parseManifestRef(ref: string): ManifestRef {
  if (ref.includes(':')) return { kind: 'digest', digest: parseDigest(ref) };
  if (!isTag(ref)) throw new RegistryError('TAG_INVALID', { detail: { tag: ref.slice(0, 200) } });
  return { kind: 'tag', tag: ref };
}

export interface StoredManifest {
  digest: string;
  mediaType: string;
  size: number;
}

export interface Page<T> {
  items: T[];
  /** The `last` value for the next page, when there may be more. */
  next?: string;
}

export class RegistryService {
  /** Uploads with a request in progress; the purge leaves them alone. */
  private readonly busyUploads = new Map<string, number>();

  constructor(
    readonly blobs: BlobStore,
    readonly metadata: MetadataStore,
    readonly limits: RegistryLimits,
    readonly deleteEnabled: boolean,
    private readonly now: () => number = Date.now,
  ) {}

  private requireDelete(): void {
    if (!this.deleteEnabled) throw new RegistryError('UNSUPPORTED', { message: 'deletes are disabled on this registry' });
  }

  // ---- blobs ----

  async statBlob(repo: string, digest: Digest): Promise<{ size: number }> {
    const link = await this.metadata.blobLink(repo, digest.text);
    if (!link) throw new RegistryError('BLOB_UNKNOWN', { detail: { digest: digest.text } });
    const st = await this.blobs.stat(digest);
    if (!st) throw new RegistryError('BLOB_UNKNOWN', { detail: { digest: digest.text } });
    return { size: st.size };
  }

  async openBlob(repo: string, digest: Digest, range?: ByteRange): Promise<Readable> {
    await this.statBlob(repo, digest);
    return this.blobs.open(digest, range);
  }

  /** Unlinks the blob from `repo`; its bytes go when GC finds nothing else needs them. */
  async deleteBlob(repo: string, digest: Digest): Promise<void> {
    this.requireDelete();
    if (!(await this.metadata.unlinkBlob(repo, digest.text))) {
      throw new RegistryError('BLOB_UNKNOWN', { detail: { digest: digest.text } });
    }
  }

  // ---- uploads ----

  async startUpload(repo: string, principal: string): Promise<UploadRecord> {
    if ((await this.metadata.countUploads(principal)) >= this.limits.maxUploadsPerPrincipal) {
      throw new RegistryError('TOOMANYREQUESTS', {
        message: `at most ${this.limits.maxUploadsPerPrincipal} open uploads per principal`,
        headers: { 'Retry-After': String(this.limits.retryAfterSeconds) },
      });
    }
    const t = this.now();
    const rec: UploadRecord = { id: randomUUID(), repository: repo, principal, offset: 0, createdAt: t, updatedAt: t };
    // Row first: a staged file without a row is then always an orphan the purge may remove.
    await this.metadata.createUpload(rec);
    try {
      await this.blobs.uploads.create(rec.id);
    } catch (err) {
      await this.metadata.deleteUpload(rec.id);
      throw err;
    }
    return rec;
  }

  /** POST ?digest=: the whole blob in one request. */
  async putMonolithic(repo: string, digest: Digest, body: Readable, length?: number): Promise<{ size: number }> {
    if (length !== undefined && length > this.limits.maxBlobBytes) {
      throw new RegistryError('SIZE_INVALID', { status: 413, message: `blob exceeds ${this.limits.maxBlobBytes} bytes` });
    }
    const opts: { expected: Digest; maxBytes: number; expectedSize?: number } = { expected: digest, maxBytes: this.limits.maxBlobBytes };
    if (length !== undefined) opts.expectedSize = length;
    const put = await this.blobs.put(body, opts);
    await this.metadata.linkBlob(repo, put.digest.text, put.size);
    return { size: put.size };
  }

  /** Cross-repository mount: true when `from` links the blob (and it exists), after linking it in `repo`. */
  async mountBlob(repo: string, from: string, digest: Digest): Promise<boolean> {
    const link = await this.metadata.blobLink(from, digest.text);
    if (!link) return false;
    const st = await this.blobs.stat(digest);
    if (!st) return false;
    await this.metadata.linkBlob(repo, digest.text, st.size);
    return true;
  }

  private async session(repo: string, id: string): Promise<{ rec: UploadRecord; size: number }> {
    if (!UPLOAD_ID.test(id)) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    const rec = await this.metadata.getUpload(id);
    if (!rec || rec.repository !== repo) throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    const size = await this.blobs.uploads.size(id);
    if (size === undefined) {
      await this.metadata.deleteUpload(id);
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN');
    }
    return { rec, size };
  }

  async uploadStatus(repo: string, id: string): Promise<number> {
    return (await this.session(repo, id)).size;
  }

  private async busy<T>(id: string, work: () => Promise<T>): Promise<T> {
    this.busyUploads.set(id, (this.busyUploads.get(id) ?? 0) + 1);
    try {
      return await work();
    } finally {
      const n = (this.busyUploads.get(id) ?? 1) - 1;
      if (n <= 0) this.busyUploads.delete(id);
      else this.busyUploads.set(id, n);
    }
  }

  /**
   * PATCH: appends a chunk. With `range` (from Content-Range) the chunk must
   * start at the current size, else 416 with the current Range.
   */
  appendChunk(
    repo: string,
    id: string,
    body: Readable,
    range?: ByteRange,
    length?: number,
    durable = true,
  ): Promise<{ size: number; appended: number }> {
    return this.busy(id, async () => {
      const { size } = await this.session(repo, id);
      let expectedLength = length;
      if (range) {
        if (range.start !== size) {
          throw new RegistryError('RANGE_INVALID', {
            message: `chunk starts at ${range.start} but the upload holds ${size} bytes`,
            headers: { Range: uploadRange(size), Location: uploadLocation(repo, id), 'Docker-Upload-UUID': id },
          });
        }
        const rangeLength = range.end - range.start + 1;
        if (length !== undefined && length !== rangeLength) {
          throw new RegistryError('SIZE_INVALID', { message: `Content-Length ${length} does not match Content-Range length ${rangeLength}` });
        }
        expectedLength = rangeLength;
      }
      if (size + (expectedLength ?? 0) > this.limits.maxBlobBytes) {
        throw new RegistryError('SIZE_INVALID', { status: 413, message: `blob exceeds ${this.limits.maxBlobBytes} bytes` });
      }
      const opts: { maxBytes: number; length?: number; durable: boolean } = { maxBytes: this.limits.maxBlobBytes, durable };
      if (expectedLength !== undefined) opts.length = expectedLength;
      const next = await this.blobs.uploads.append(id, size, body, opts);
      // A non-durable append is the final chunk of a PUT: the commit right after
      // removes the session row, so updating it would only cost a metadata sync.
      if (durable) await this.metadata.updateUploadOffset(id, next, this.now());
      return { size: next, appended: next - size };
    });
  }

  /** PUT ?digest=: appends the optional final chunk, verifies, commits and links. */
  completeUpload(
    repo: string,
    id: string,
    digest: Digest,
    finalChunk?: { body: Readable; range?: ByteRange; length?: number },
  ): Promise<{ size: number; appended: number }> {
    return this.busy(id, async () => {
      let appended = 0;
      if (finalChunk) {
        // appendChunk checks the session itself.
        appended = (await this.appendChunk(repo, id, finalChunk.body, finalChunk.range, finalChunk.length, false)).appended;
      } else {
        await this.session(repo, id);
      }
      let committed;
      try {
        committed = await this.blobs.uploads.commit(id, digest);
      } catch (err) {
        // A failed verification removed the staged bytes: the session is over.
        if (!(err instanceof UploadNotFoundError)) await this.metadata.deleteUpload(id);
        throw err;
      }
      await this.metadata.completeUpload(id, repo, committed.digest.text, committed.size);
      return { size: committed.size, appended };
    });
  }

  async cancelUpload(repo: string, id: string): Promise<void> {
    await this.session(repo, id);
    await this.blobs.uploads.remove(id);
    await this.metadata.deleteUpload(id);
  }

  /** Removes sessions idle longer than the timeout, and staged files no session owns. Returns how many. */
  async purgeStaleUploads(): Promise<number> {
    const cutoff = this.now() - this.limits.uploadSessionTimeoutMs;
    let purged = 0;
    for (const rec of await this.metadata.listUploads(cutoff)) {
      if (this.busyUploads.has(rec.id)) continue;
      await this.blobs.uploads.remove(rec.id);
      await this.metadata.deleteUpload(rec.id);
      purged++;
    }
    for (const id of await this.blobs.uploads.list()) {
      if (this.busyUploads.has(id) || (await this.metadata.getUpload(id))) continue;
      await this.blobs.uploads.remove(id);
      purged++;
    }
    return purged;
  }

  // ---- manifests ----

  async putManifest(
    repo: string,
    ref: ManifestRef,
    bytes: Buffer,
    contentType: string | undefined,
  ): Promise<{ digest: string; subject?: string }> {
    const parsed = parseManifest(bytes, { contentType, maxBytes: this.limits.maxManifestBytes });
    const algorithm = ref.kind === 'digest' ? ref.digest.algorithm : 'sha256';
    const digest = digestOf(bytes, algorithm);
    if (ref.kind === 'digest' && ref.digest.text !== digest.text) {
      throw new RegistryError('DIGEST_INVALID', {
        message: `manifest digest ${digest.text} does not match the reference ${ref.digest.text}`,
        detail: { digest: ref.digest.text },
      });
    }
    const references: ManifestReference[] = [];
    const seen = new Set<string>();
    const add = (d: Descriptor, kind: 'blob' | 'manifest'): void => {
      // Foreign layers live elsewhere by design; the registry never fetches their urls.
      if (d.mediaType === MediaType.DockerForeignLayerGzip) return;
      const key = `${kind}:${d.digest}`;
      if (seen.has(key)) return;
      seen.add(key);
      references.push({ digest: d.digest, kind });
    };
    for (const b of parsed.blobs) add(b, 'blob');
    for (const m of parsed.manifests) add(m, 'manifest');
    await this.blobs.putBytes(bytes, { expected: digest });
    const rec: Parameters<MetadataStore['putManifest']>[0] = {
      repository: repo,
      digest: digest.text,
      mediaType: parsed.mediaType,
      size: bytes.length,
      createdAt: this.now(),
      references,
    };
    if (parsed.artifactType !== undefined) rec.artifactType = parsed.artifactType;
    if (parsed.subject) rec.subject = parsed.subject.digest;
    if (parsed.annotations) rec.annotations = parsed.annotations;
    await this.metadata.putManifest(rec, ref.kind === 'tag' ? [ref.tag] : []);
    const out: { digest: string; subject?: string } = { digest: digest.text };
    if (parsed.subject) out.subject = parsed.subject.digest;
    return out;
  }

  async resolveManifest(repo: string, ref: ManifestRef): Promise<StoredManifest> {
    const digest = ref.kind === 'tag' ? await this.metadata.resolveTag(repo, ref.tag) : ref.digest.text;
    const rec = digest === undefined ? undefined : await this.metadata.getManifest(repo, digest);
    if (!rec) throw new RegistryError('MANIFEST_UNKNOWN', { detail: ref.kind === 'tag' ? { tag: ref.tag } : { digest } });
    return { digest: rec.digest, mediaType: rec.mediaType, size: rec.size };
  }

  async readManifest(repo: string, ref: ManifestRef): Promise<StoredManifest & { bytes: Buffer }> {
    const m = await this.resolveManifest(repo, ref);
    const bytes = await this.blobs.readBytes(parseDigest(m.digest), Math.max(this.limits.maxManifestBytes, m.size));
    return { ...m, bytes };
  }

  async deleteManifest(repo: string, ref: ManifestRef): Promise<void> {
    this.requireDelete();
    const gone =
      ref.kind === 'tag'
        ? await this.metadata.deleteTag(repo, ref.tag)
        : await this.metadata.deleteManifest(repo, ref.digest.text);
    if (!gone) throw new RegistryError('MANIFEST_UNKNOWN');
  }

  // ---- listings ----

  private clamp(n: number | undefined): number {
    if (n === undefined) return this.limits.maxPageSize;
    return Math.max(0, Math.min(n, this.limits.maxPageSize));
  }

  async listTags(repo: string, n?: number, last?: string): Promise<Page<string>> {
    const size = this.clamp(n);
    const page: { n: number; last?: string } = { n: size + 1 };
    if (last !== undefined) page.last = last;
    const tags = await this.metadata.listTags(repo, page);
    if (!tags) throw new RegistryError('NAME_UNKNOWN', { detail: { name: repo } });
    return pageOf(tags, size);
  }

  async catalog(n?: number, last?: string): Promise<Page<string>> {
    const size = this.clamp(n);
    const page: { n: number; last?: string } = { n: size + 1 };
    if (last !== undefined) page.last = last;
    return pageOf(await this.metadata.listRepositories(page), size);
  }

  async referrers(repo: string, subject: Digest, artifactType?: string): Promise<Descriptor[]> {
    const recs = await this.metadata.listReferrers(repo, subject.text, artifactType);
    return recs.slice(0, this.limits.maxReferrers).map((r) => {
      const d: Descriptor = { mediaType: r.mediaType, digest: r.digest, size: r.size };
      if (r.artifactType !== undefined) d.artifactType = r.artifactType;
      if (r.annotations !== undefined) d.annotations = r.annotations;
      return d;
    });
  }
}

function pageOf(items: string[], size: number): Page<string> {
  if (items.length > size) {
    const shown = items.slice(0, size);
    const page: Page<string> = { items: shown };
    if (size > 0) page.next = shown[shown.length - 1]!;
    return page;
  }
  return { items };
}

export function uploadLocation(repo: string, id: string): string {
  return `/v2/${repo}/blobs/uploads/${id}`;
}
