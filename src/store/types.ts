/**
 * Storage contracts for the registry (and every part that keeps images).
 *
 * Two stores, kept apart as in CNCF distribution:
 *  - `BlobStore`: content-addressed bytes, no notion of repositories. A blob is
 *    visible only after its bytes were verified against its digest; uploads are
 *    staged apart and committed by an atomic move.
 *  - `MetadataStore`: repositories, manifests, tags, per-repository blob links,
 *    referrers and upload sessions. Every multi-row change is one transaction.
 *
 * Manifests are stored as blobs too (their bytes, keyed by their digest), and
 * the metadata store records which repository holds which manifest.
 *
 * Digests cross these interfaces as parsed `Digest` values (blob store) or as
 * canonical text that was parsed before (metadata store): no driver ever sees
 * an unvalidated digest.
 */
import type { Readable } from 'node:stream';
import type { Digest, DigestAlgorithm } from '../oci/index.js';

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

export interface BlobStat {
  size: number;
  /** When the bytes were last (re)committed, ms since the epoch; GC's grace period counts from here. */
  modifiedAt: number;
}

export interface PutOptions {
  /** When given, the bytes must hash to it or nothing is stored (`DigestMismatchError`). */
  expected?: Digest;
  /** When given, the byte count must equal it (`SizeMismatchError`). */
  expectedSize?: number;
  /** Algorithm when `expected` is absent; default sha256. */
  algorithm?: DigestAlgorithm;
  /** Abort with `TooLargeError` once more than this many bytes arrived. */
  maxBytes?: number;
}

export interface CommittedBlob {
  digest: Digest;
  size: number;
}

export interface AppendOptions {
  /** Abort with `TooLargeError` (and roll back) once the staged size would pass this. */
  maxBytes?: number;
  /** The chunk must be exactly this long, else `SizeMismatchError` (and roll back). */
  length?: number;
  /**
   * fsync the staged bytes before resolving (default true): an acknowledged
   * chunk survives a crash. Callers that commit right after may skip it, since
   * commit syncs anyway.
   */
  durable?: boolean;
}

/** The staging area for resumable uploads. Ids are UUIDs checked by the caller. */
export interface UploadStaging {
  create(id: string): Promise<void>;
  /** Current staged size, or undefined when the upload does not exist. */
  size(id: string): Promise<number | undefined>;
  /**
   * Appends `body` at `offset`. `offset` must equal the current size, else
   * `UploadOffsetError` (carrying the current size) and nothing is written.
   * On a stream error the staged size is rolled back to `offset`.
   * Resolves to the new size.
   */
  append(id: string, offset: number, body: Readable, opts?: AppendOptions): Promise<number>;
  /**
   * Verifies the staged bytes against `expected` (and `expectedSize`), then
   * makes them the blob `expected` by an atomic move; the staging entry is gone
   * afterwards. On mismatch the staged data is removed and the error thrown.
   */
  commit(id: string, expected: Digest, expectedSize?: number): Promise<CommittedBlob>;
  remove(id: string): Promise<void>;
  list(): Promise<string[]>;
}

export interface BlobStore {
  stat(digest: Digest): Promise<BlobStat | undefined>;
  /** Streams the blob (or a range of it); throws `BlobNotFoundError`. */
  open(digest: Digest, range?: ByteRange): Promise<Readable>;
  /** Streams `body` into the store, verifying as it goes; visible only once verified. */
  put(body: Readable, opts?: PutOptions): Promise<CommittedBlob>;
  /** Stores a small in-memory document (manifest, config). */
  putBytes(data: Uint8Array, opts?: PutOptions): Promise<CommittedBlob>;
  /** Reads a whole blob into memory; for small documents only (bounded by `maxBytes`). */
  readBytes(digest: Digest, maxBytes: number): Promise<Buffer>;
  /**
   * Removes the blob. With `olderThan` (ms since the epoch), removes it only
   * when it was last committed before that instant, and keeps it when a
   * concurrent commit of the same digest races the removal (GC's guarantee).
   */
  delete(digest: Digest, opts?: { olderThan?: number }): Promise<boolean>;
  list(): AsyncIterable<Digest>;
  readonly uploads: UploadStaging;
}

/** A manifest (or index) as the metadata store knows it. */
export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
  /** Digest of the `subject` manifest, for the referrers API. */
  subject?: string;
  annotations?: Record<string, string>;
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** Blobs (config, layers) and child manifests this document references. */
  references: ManifestReference[];
}

export interface ManifestReference {
  digest: string;
  kind: 'blob' | 'manifest';
}

export interface UploadRecord {
  id: string;
  repository: string;
  /** Who started it (account name, or "anonymous"), for per-principal limits. */
  principal: string;
  /** Bytes received so far. */
  offset: number;
  createdAt: number;
  updatedAt: number;
}

export interface Page {
  /** Maximum entries to return. */
  n?: number;
  /** Return entries lexically after this one. */
  last?: string;
}

export interface MetadataStore {
  /** Records that `repo` may serve blob `digest` (upload or mount). Creates the repository. */
  linkBlob(repo: string, digest: string, size: number): Promise<void>;
  blobLink(repo: string, digest: string): Promise<{ size: number } | undefined>;
  unlinkBlob(repo: string, digest: string): Promise<boolean>;

  /**
   * In one transaction: checks every referenced blob is linked in the
   * repository and every child manifest is present there (else throws
   * `MissingReferencesError` and changes nothing), then writes the manifest
   * row, its references, its blob link, and each tag pointed at it.
   */
  putManifest(rec: ManifestRecord, tags: string[]): Promise<void>;
  getManifest(repo: string, digest: string): Promise<ManifestRecord | undefined>;
  resolveTag(repo: string, tag: string): Promise<string | undefined>;
  /** Tags currently pointing at `digest` in `repo`, sorted. */
  tagsOf(repo: string, digest: string): Promise<string[]>;
  /** Removes the manifest, its references and every tag pointing at it. */
  deleteManifest(repo: string, digest: string): Promise<boolean>;
  deleteTag(repo: string, tag: string): Promise<boolean>;
  /**
   * In one transaction: removes `tag`, and the manifest it pointed at when no
   * other tag of `repo` still points there. Answers the digest the tag named
   * (undefined when the tag did not exist) and whether the manifest went too.
   */
  untag(repo: string, tag: string): Promise<{ digest: string; manifestRemoved: boolean } | undefined>;
  /** Tags of `repo` in lexical (bytewise) order; undefined when the repository does not exist. */
  listTags(repo: string, page?: Page): Promise<string[] | undefined>;
  /** Manifests of `repo`, newest first. */
  listManifests(repo: string): Promise<ManifestRecord[]>;
  repositoryExists(repo: string): Promise<boolean>;
  /** Repository names in lexical order. */
  listRepositories(page?: Page): Promise<string[]>;
  /** Manifests in `repo` whose subject is `subject`, optionally filtered by artifact type. */
  listReferrers(repo: string, subject: string, artifactType?: string): Promise<ManifestRecord[]>;
  /** True when some manifest in some repository references `digest` as a child or a blob. */
  isReferenced(digest: string): Promise<boolean>;

  createUpload(rec: UploadRecord): Promise<void>;
  getUpload(id: string): Promise<UploadRecord | undefined>;
  updateUploadOffset(id: string, offset: number, updatedAt: number): Promise<void>;
  deleteUpload(id: string): Promise<void>;
  /** Uploads last updated before `updatedBefore` (ms), for purging. */
  listUploads(updatedBefore?: number): Promise<UploadRecord[]>;
  countUploads(principal: string): Promise<number>;
  /** One transaction: links the committed blob in `repo` and removes the upload session `id`. */
  completeUpload(id: string, repo: string, digest: string, size: number): Promise<void>;

  /** GC mark: every manifest present in any repository, and everything they reference. */
  liveDigests(): Promise<Set<string>>;
  /**
   * GC sweep step, one transaction: when no manifest is or references
   * `digest`, drops every repository's link to it and answers true; else
   * changes nothing and answers false. A concurrent `putManifest` either
   * commits first (the blob stays) or finds the link gone (and fails).
   */
  releaseUnreferenced(digest: string): Promise<boolean>;
  /** Repositories linking `digest` (for GC reports). */
  blobLinkCount(digest: string): Promise<number>;

  close(): Promise<void>;
}
