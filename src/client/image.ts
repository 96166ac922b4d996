/**
 * Whole-image transfers on top of RegistryClient: push the blobs of a
 * manifest (bounded concurrency) and then the manifest; pull a manifest (and,
 * for an index, its child manifests) with every blob, into a callback or an
 * OCI image layout directory.
 *
 * Invariant: blobs are fetched from registries by digest only — `urls[]` in
 * descriptors (foreign layers) are never followed (security-cases.md row 10).
 */
import { createWriteStream } from 'node:fs';
import { mkdir, open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestOf, parseDigest, type Digest } from '../oci/index.js';
import { MediaType } from '../oci/index.js';
import { ProtocolError } from './errors.js';
import { writeFileAtomicWith } from '../util/index.js';
import type { ProgressListener } from './progress.js';
import {
  descriptorList,
  parseDescriptor,
  type BlobSource,
  type Descriptor,
  type PushBlobResult,
  type RegistryClient,
} from './registry-client.js';

export const DEFAULT_TRANSFER_CONCURRENCY = 4;
/** Deepest index nesting followed on pull. */
export const MAX_INDEX_DEPTH = 2;

/** Runs `fn` over `items` with at most `limit` in flight; fails on the first error. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return out;
}

/** The blobs an image manifest references (config first, then layers). */
export function manifestBlobs(manifestBytes: Buffer): { config?: Descriptor; layers: Descriptor[]; children: Descriptor[] } {
  let doc: unknown;
  try {
    doc = JSON.parse(manifestBytes.toString('utf8'));
  } catch {
    throw new ProtocolError('manifest is not valid JSON');
  }
  if (typeof doc !== 'object' || doc === null) throw new ProtocolError('manifest is not a JSON object');
  const { config, layers, manifests } = doc as { config?: unknown; layers?: unknown; manifests?: unknown };
  if (manifests !== undefined && (config !== undefined || layers !== undefined)) {
    throw new ProtocolError('ambiguous manifest: has both "manifests" and "config"/"layers"');
  }
  if (manifests !== undefined) return { layers: [], children: descriptorList(doc) };
  if (layers !== undefined && !Array.isArray(layers)) throw new ProtocolError('manifest "layers" is not a list');
  return {
    config: config === undefined ? undefined : parseDescriptor(config),
    layers: ((layers as unknown[] | undefined) ?? []).map(parseDescriptor),
    children: [],
  };
}

export interface PushImageOptions {
  client: RegistryClient;
  repository: string;
  /** Tag to push the manifest under; the digest is used when absent. */
  tag?: string;
  manifest: { bytes: Buffer; mediaType: string };
  /** Gives the bytes of each blob the manifest references. */
  blobs: (descriptor: Descriptor) => BlobSource | Promise<BlobSource>;
  /** Try a cross-repository mount from this repository first. */
  mountFrom?: string;
  concurrency?: number;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface PushImageResult {
  digest: Digest;
  blobs: PushBlobResult[];
}

/** Pushes every blob of an image manifest (bounded concurrency), then the manifest. */
export async function pushImage(options: PushImageOptions): Promise<PushImageResult> {
  const { client, repository, manifest } = options;
  const { config, layers, children } = manifestBlobs(manifest.bytes);
  if (children.length > 0) {
    for (const child of children) {
      if (!(await client.headManifest(repository, child.digest, options.signal))) {
        throw new ProtocolError(`index refers to ${child.digest}, which ${repository} does not have: push it first`);
      }
    }
  }
  const unique = new Map<string, Descriptor>();
  for (const d of config ? [config, ...layers] : layers) unique.set(d.digest, d);
  const results = await mapLimit([...unique.values()], options.concurrency ?? DEFAULT_TRANSFER_CONCURRENCY, async (d) => {
    const source = await options.blobs(d);
    if (source.size !== d.size) {
      throw new ProtocolError(`blob ${d.digest}: source has ${source.size} bytes, descriptor says ${d.size}`);
    }
    return client.pushBlob(repository, d.digest, source, {
      mountFrom: options.mountFrom,
      onProgress: options.onProgress,
      signal: options.signal,
    });
  });
  const reference = options.tag ?? digestOf(manifest.bytes);
  const digest = await client.putManifest(repository, reference, manifest.bytes, manifest.mediaType, options.signal);
  return { digest, blobs: results };
}

export interface PullImageOptions {
  client: RegistryClient;
  repository: string;
  /** Tag or digest. */
  reference: string;
  /** Receives each blob's verified stream; must consume it. */
  onBlob?: (descriptor: Descriptor, stream: Readable) => Promise<void>;
  /** Write an OCI image layout here (blobs + index.json naming the reference). */
  dir?: string;
  concurrency?: number;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

export interface PullImageResult {
  digest: Digest;
  mediaType: string;
  manifest: Buffer;
  /** Every blob pulled (configs and layers of every manifest reached). */
  blobs: Descriptor[];
}

/** Pulls a manifest (following an index to its children) and every blob it references. */
export async function pullImage(options: PullImageOptions): Promise<PullImageResult> {
  const { client, repository } = options;
  const top = await client.getManifest(repository, options.reference, options.signal);
  const blobs = new Map<string, Descriptor>();
  const manifests: { digest: Digest; bytes: Buffer; mediaType: string }[] = [];
  const walk = async (bytes: Buffer, mediaType: string, digest: Digest, depth: number): Promise<void> => {
    manifests.push({ digest, bytes, mediaType });
    const { config, layers, children } = manifestBlobs(bytes);
    for (const d of config ? [config, ...layers] : layers) blobs.set(d.digest, d);
    if (children.length > 0) {
      if (depth >= MAX_INDEX_DEPTH) throw new ProtocolError(`index nesting deeper than ${MAX_INDEX_DEPTH}`);
      for (const child of children) {
        const m = await client.getManifest(repository, child.digest, options.signal);
        await walk(m.bytes, m.mediaType || child.mediaType, m.digest, depth + 1);
      }
    }
  };
  await walk(top.bytes, top.mediaType, top.digest, 0);
  if (options.dir) await prepareLayout(options.dir);
  await mapLimit([...blobs.values()], options.concurrency ?? DEFAULT_TRANSFER_CONCURRENCY, async (d) => {
    if (options.dir && (await hasLayoutBlob(options.dir, d))) return;
    // Only the registry is asked for the blob: d.urls is deliberately ignored.
    const stream = client.getBlob(repository, d.digest, { size: d.size, onProgress: options.onProgress, signal: options.signal });
    if (options.dir) await writeLayoutBlob(options.dir, parseDigest(d.digest), stream);
    else if (options.onBlob) await options.onBlob(d, stream);
    else for await (const _ of stream) void _; // verify only: the stream checks the digest as it drains
  });
  if (options.dir) {
    for (const m of manifests) await writeLayoutBuffer(options.dir, m.digest, m.bytes);
    await addLayoutRef(options.dir, { mediaType: top.mediaType || MediaType.OciManifest, digest: top.digest.text, size: top.bytes.length }, options.reference);
  }
  return { digest: top.digest, mediaType: top.mediaType, manifest: top.bytes, blobs: [...blobs.values()] };
}

// ---- a minimal OCI image layout writer (atomic: util/durable.ts's temp, fsync, rename, fsync dir) ----

async function atomicWrite(dir: string, name: string, write: (path: string) => Promise<void>): Promise<void> {
  await writeFileAtomicWith(join(dir, name), write);
}

async function prepareLayout(dir: string): Promise<void> {
  await mkdir(join(dir, 'blobs', 'sha256'), { recursive: true });
  await mkdir(join(dir, 'blobs', 'sha512'), { recursive: true });
  await atomicWrite(dir, 'oci-layout', async (p) => {
    await writeAll(p, Buffer.from(JSON.stringify({ imageLayoutVersion: '1.0.0' })));
  });
}

async function writeAll(path: string, data: Buffer): Promise<void> {
  const fh = await open(path, 'w');
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

async function hasLayoutBlob(dir: string, d: Descriptor): Promise<boolean> {
  const digest = parseDigest(d.digest);
  try {
    return (await stat(join(dir, 'blobs', digest.algorithm, digest.hex))).size === d.size;
  } catch {
    return false;
  }
}

async function writeLayoutBlob(dir: string, digest: Digest, stream: Readable): Promise<void> {
  await atomicWrite(join(dir, 'blobs', digest.algorithm), digest.hex, (p) => pipeline(stream, createWriteStream(p)));
}

async function writeLayoutBuffer(dir: string, digest: Digest, data: Buffer): Promise<void> {
  await atomicWrite(join(dir, 'blobs', digest.algorithm), digest.hex, (p) => writeAll(p, data));
}

const REF_ANNOTATION = 'org.opencontainers.image.ref.name';

async function addLayoutRef(dir: string, descriptor: Descriptor, reference: string): Promise<void> {
  let index: { schemaVersion: number; mediaType?: string; manifests: Descriptor[] } = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [],
  };
  try {
    const existing = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as typeof index;
    if (Array.isArray(existing.manifests)) index = existing;
  } catch {
    // No index yet (or unreadable): start a fresh one.
  }
  const refName = reference.includes(':') ? undefined : reference;
  index.manifests = index.manifests.filter((m) =>
    refName ? m.annotations?.[REF_ANNOTATION] !== refName : m.digest !== descriptor.digest,
  );
  index.manifests.push(refName ? { ...descriptor, annotations: { [REF_ANNOTATION]: refName } } : descriptor);
  await atomicWrite(dir, 'index.json', (p) => writeAll(p, Buffer.from(JSON.stringify(index))));
}
