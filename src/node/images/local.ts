/**
 * The node's images: its local registry (the same stores the node serves on
 * /v2, so a push to the node lands here) used as the image cache, a pull from
 * the central registry on first use, and the rootfs cache the `micro` runtime
 * mounts.
 *
 * Invariants:
 *  - An image reference is resolved to a manifest digest once, at create; the
 *    instance keeps `repository@digest` and every later start uses exactly that
 *    manifest (a moved tag never changes a created instance).
 *  - Pulled bytes enter the local registry only through the registry service,
 *    which verifies each blob against its digest before it becomes visible.
 *  - The rootfs of one initrd layer is prepared once per layer digest:
 *    `<cacheDir>/<hex>.img` + a read-only EROFS mount at `<cacheDir>/<hex>/`,
 *    or a CPIO extracted (confined) into `<cacheDir>/<hex>/` and marked ready
 *    by `<cacheDir>/<hex>.ready` written last. Nothing half-made is ever used.
 */
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { randomUUID } from 'node:crypto';
import { parseDigest, tryParseDigest, type Digest } from '../../oci/digest.js';
import { parseReference, ImageReferenceError } from '../../oci/reference.js';
import { readTar } from '../../oci/tar.js';
import { CpioFormatError, extractCpio } from '../../oci/cpio-read.js';
import { ExtractError, ExtractLimitError } from '../../oci/extract.js';
import type { BlobStore, MetadataStore } from '../../store/types.js';
import type { RegistryService } from '../../registry/service.js';
import { RegistryClient, manifestBlobs, RegistryError as ClientRegistryError, RegistryClientError, type Descriptor } from '../../client/index.js';
import { isMountPoint, mountErofs } from '../../sandbox/index.js';
import { Errno, NodeError } from '../errors.js';
import type { Principal } from '../auth.js';
import type { ImageConfig, ImageRequest, ImageResolver, ResolvedImage, RootfsHandle } from './resolver.js';
import type { CatalogImage, ImageCatalog } from './catalog.js';

/** Path of the initrd inside the single-file initrd layer (Unikraft layout). */
export const INITRD_ENTRY = 'unikraft/bin/initrd';
const KERNEL_ENTRY = 'unikraft/bin/kernel';

export interface LocalImagesLimits {
  /** Largest image config read into memory. */
  maxConfigBytes: number;
  /** Largest manifest read into memory. */
  maxManifestBytes: number;
  /** Largest initrd accepted (bytes); also bounds a CPIO's extracted size. */
  maxInitrdBytes: number;
  /** Most entries in a CPIO initrd. */
  maxCpioEntries: number;
}

export const DEFAULT_LOCAL_IMAGES_LIMITS: LocalImagesLimits = {
  maxConfigBytes: 1024 * 1024,
  maxManifestBytes: 4 * 1024 * 1024,
  maxInitrdBytes: 4 * 1024 * 1024 * 1024,
  maxCpioEntries: 1_000_000,
};

export interface LocalImagesOptions {
  blobs: BlobStore;
  metadata: MetadataStore;
  service: RegistryService;
  /** Central registry base URL (`http://127.0.0.1:5000`); without it only local images resolve. */
  centralUrl?: string;
  /** Where prepared root filesystems live. */
  cacheDir: string;
  /** The host:port the node's registry is reached at, for `url` in the image list. */
  registryHost: string;
  limits?: Partial<LocalImagesLimits>;
}

/** What the runtime mounts: a read-only directory tree holding the image's root filesystem. */
export interface MicroRootfs extends RootfsHandle {
  kind: 'erofs' | 'cpio';
  /** Read-only lower directory for the instance's overlay. */
  path: string;
  /** Digest of the initrd layer (the cache key). */
  layer: string;
}

/** Which of the central registry's reference forms name a repository, without the domain. */
function parseImageUrl(url: string): { repository: string; tag?: string; digest?: Digest } {
  try {
    const ref = parseReference(url, { defaultDomain: 'central.invalid', officialNamespace: '', domainAliases: [], defaultTag: 'latest' });
    const out: { repository: string; tag?: string; digest?: Digest } = { repository: ref.path };
    if (ref.digest) out.digest = ref.digest;
    else if (ref.tag !== undefined) out.tag = ref.tag;
    return out;
  } catch (err) {
    throw new NodeError(Errno.EINVAL, err instanceof ImageReferenceError ? err.message : 'invalid image reference');
  }
}

function isNotFound(err: unknown): boolean {
  if (err instanceof ClientRegistryError) return err.status === 404;
  if (err instanceof Error && 'code' in err) {
    const code = (err as { code?: unknown }).code;
    return code === 'MANIFEST_UNKNOWN' || code === 'NAME_UNKNOWN';
  }
  return false;
}

function envMap(env: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of env ?? []) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

function strings(x: unknown): string[] | undefined {
  return Array.isArray(x) && x.every((s) => typeof s === 'string') ? (x as string[]) : undefined;
}

/** Reads the runnable parts of an OCI image config (unknown fields ignored, wrong types dropped). */
export function parseImageConfig(bytes: Buffer): ImageConfig {
  let doc: unknown;
  try {
    doc = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new NodeError(Errno.EINVAL, 'image config is not valid JSON');
  }
  const c = (typeof doc === 'object' && doc !== null ? (doc as { config?: unknown }).config : undefined) ?? {};
  const cfg = typeof c === 'object' && c !== null ? (c as Record<string, unknown>) : {};
  const out: ImageConfig = {};
  const cmd = strings(cfg.Cmd);
  if (cmd) out.Cmd = cmd;
  const entry = strings(cfg.Entrypoint);
  if (entry) out.Entrypoint = entry;
  const env = strings(cfg.Env);
  if (env) out.Env = env;
  if (typeof cfg.Labels === 'object' && cfg.Labels !== null) {
    const labels: Record<string, string> = {};
    for (const [k, v] of Object.entries(cfg.Labels)) if (typeof v === 'string') labels[k] = v;
    out.Labels = labels;
  }
  return out;
}

/** EROFS superblock magic (0xE0F5E1E2, little endian) at byte 1024; CPIO newc starts with "07070". */
export function initrdFormat(head: Buffer): 'erofs' | 'cpio' | undefined {
  if (head.length >= 1028 && head.readUInt32LE(1024) === 0xe0f5e1e2) return 'erofs';
  if (head.length >= 6 && (head.subarray(0, 6).toString('latin1') === '070701' || head.subarray(0, 6).toString('latin1') === '070702')) return 'cpio';
  return undefined;
}

interface ImageManifestView {
  digest: string;
  config?: Descriptor;
  layers: Descriptor[];
}

export class LocalImages implements ImageResolver, ImageCatalog {
  private readonly limits: LocalImagesLimits;
  private readonly client: RegistryClient | undefined;
  private readonly pulls = new Map<string, Promise<string>>();
  private readonly rootfs = new Map<string, Promise<MicroRootfs>>();

  constructor(private readonly options: LocalImagesOptions) {
    this.limits = { ...DEFAULT_LOCAL_IMAGES_LIMITS, ...options.limits };
    this.client = options.centralUrl ? new RegistryClient({ baseUrl: options.centralUrl }) : undefined;
  }

  close(): void {
    this.client?.close();
  }

  // ---- resolver -----------------------------------------------------------

  async resolve(request: ImageRequest, _principal: Principal): Promise<ResolvedImage> {
    const ref = parseImageUrl(request.url);
    const digest = await this.locate(ref, request);
    const view = await this.readManifest(ref.repository, digest);
    const config = view.config ? parseImageConfig(await this.options.blobs.readBytes(parseDigest(view.config.digest), this.limits.maxConfigBytes)) : {};
    const initrd = view.layers[view.layers.length - 1];
    if (!initrd) throw new NodeError(Errno.EINVAL, 'image has no rootfs layer');
    const rootfs = await this.prepareRootfs(initrd);
    return { digestRef: `${ref.repository}@${digest}`, config, rootfs };
  }

  /** Finds the manifest digest locally or pulls it, following the pull policy. */
  private async locate(ref: { repository: string; tag?: string; digest?: Digest }, request: ImageRequest): Promise<string> {
    const { repository } = ref;
    const local = async (): Promise<string | undefined> => {
      if (ref.digest) return (await this.options.metadata.getManifest(repository, ref.digest.text)) ? ref.digest.text : undefined;
      return this.options.metadata.resolveTag(repository, ref.tag ?? 'latest');
    };
    if (request.pullPolicy !== 'always' || ref.digest) {
      const found = await local();
      if (found) return found;
    }
    if (request.pullPolicy === 'never') throw new NodeError(Errno.ENOENT, `image ${request.url} is not on this node (pull_policy never)`);
    const reference = ref.digest?.text ?? ref.tag ?? 'latest';
    const key = `${repository}\n${reference}`;
    let pull = this.pulls.get(key);
    if (!pull) {
      pull = this.pull(repository, reference, request.credentials).finally(() => this.pulls.delete(key));
      this.pulls.set(key, pull);
    }
    return pull;
  }

  /** Pulls a manifest and its blobs from the central registry into the local one; answers the manifest digest. */
  private async pull(repository: string, reference: string, credentials: ImageRequest['credentials']): Promise<string> {
    if (!this.client || !this.options.centralUrl) throw new NodeError(Errno.ENOENT, `image ${repository}:${reference} not found (no central registry configured)`);
    const client = credentials ? new RegistryClient({ baseUrl: this.options.centralUrl, credentials }) : this.client;
    try {
      const top = await client.getManifest(repository, reference);
      const { config, layers, children } = manifestBlobs(top.bytes);
      let bytes = top.bytes;
      let mediaType = top.mediaType;
      let blobsOf = config ? [config, ...layers] : layers;
      if (children.length > 0) {
        // An index: the first child is the image (ours carry exactly one platform).
        const child = children[0] as Descriptor;
        const m = await client.getManifest(repository, child.digest);
        const inner = manifestBlobs(m.bytes);
        if (inner.children.length > 0) throw new NodeError(Errno.EINVAL, 'nested image indexes are not supported');
        blobsOf = inner.config ? [inner.config, ...inner.layers] : inner.layers;
        await this.storeBlobs(client, repository, blobsOf);
        await this.options.service.putManifest(repository, { kind: 'digest', digest: m.digest }, m.bytes, m.mediaType);
        bytes = top.bytes;
        mediaType = top.mediaType;
        blobsOf = [];
      }
      await this.storeBlobs(client, repository, blobsOf);
      const isDigest = tryParseDigest(reference) !== undefined;
      const ref = isDigest ? { kind: 'digest' as const, digest: parseDigest(reference) } : { kind: 'tag' as const, tag: reference };
      const stored = await this.options.service.putManifest(repository, ref, bytes, mediaType);
      if (children.length > 0) return (children[0] as Descriptor).digest;
      return stored.digest;
    } catch (err) {
      if (err instanceof NodeError) throw err;
      if (isNotFound(err)) throw new NodeError(Errno.ENOENT, `image ${repository}:${reference} not found`);
      if (err instanceof ClientRegistryError && (err.status === 401 || err.status === 403)) {
        throw new NodeError(Errno.EACCES, `access to image ${repository} refused`);
      }
      if (err instanceof RegistryClientError) throw new NodeError(Errno.EIO, `pulling ${repository}:${reference}: ${err.message}`);
      throw err;
    } finally {
      if (client !== this.client) client.close();
    }
  }

  private async storeBlobs(client: RegistryClient, repository: string, blobs: Descriptor[]): Promise<void> {
    for (const d of blobs) {
      const digest = parseDigest(d.digest);
      const have = await this.options.blobs.stat(digest);
      if (have && have.size === d.size) {
        await this.options.metadata.linkBlob(repository, digest.text, d.size);
        continue;
      }
      const stream = client.getBlob(repository, digest, { size: d.size });
      await this.options.service.putMonolithic(repository, digest, stream, d.size);
    }
  }

  private async readManifest(repository: string, digest: string): Promise<ImageManifestView> {
    const bytes = await this.options.blobs.readBytes(parseDigest(digest), this.limits.maxManifestBytes);
    const top = manifestBlobs(bytes);
    let { config, layers } = top;
    if (top.children.length > 0) {
      const child = top.children[0] as Descriptor;
      const inner = manifestBlobs(await this.options.blobs.readBytes(parseDigest(child.digest), this.limits.maxManifestBytes));
      ({ config, layers } = inner);
    }
    void repository;
    const out: ImageManifestView = { digest, layers };
    if (config) out.config = config;
    return out;
  }

  // ---- rootfs cache -------------------------------------------------------

  /** Prepares (once per layer digest) the read-only tree of an initrd layer. */
  prepareRootfs(layer: Descriptor): Promise<MicroRootfs> {
    let p = this.rootfs.get(layer.digest);
    if (!p) {
      p = this.buildRootfs(parseDigest(layer.digest));
      p.catch(() => this.rootfs.delete(layer.digest));
      this.rootfs.set(layer.digest, p);
    }
    return p;
  }

  private async buildRootfs(layer: Digest): Promise<MicroRootfs> {
    const dir = this.options.cacheDir;
    await mkdir(dir, { recursive: true });
    const img = join(dir, `${layer.hex}.img`);
    const tree = join(dir, layer.hex);
    const ready = join(dir, `${layer.hex}.ready`);
    if (existsSync(ready)) {
      const kind = (await readFile(ready, 'utf8')).trim() === 'erofs' ? 'erofs' : 'cpio';
      if (kind === 'erofs' && !isMountPoint(tree)) await mountErofs(img, tree);
      return { kind, path: tree, layer: layer.text };
    }
    const tmp = join(dir, `.tmp-${randomUUID()}`);
    try {
      await this.extractInitrd(layer, tmp);
      const head = Buffer.alloc(1028);
      const fh = await open(tmp, 'r');
      let n: number;
      try {
        n = (await fh.read(head, 0, head.length, 0)).bytesRead;
        await fh.sync();
      } finally {
        await fh.close();
      }
      const format = initrdFormat(head.subarray(0, n));
      if (!format) throw new NodeError(Errno.EINVAL, 'the initrd is neither EROFS nor CPIO newc');
      await rm(tree, { recursive: true, force: true });
      await mkdir(tree, { recursive: true });
      if (format === 'erofs') {
        await rename(tmp, img);
        await mountErofs(img, tree);
      } else {
        // Confined like a layer: devices skipped (the sandbox gives every instance its own /dev).
        try {
          await extractCpio(tree, createReadStream(tmp), {
            compression: 'none',
            maxBytes: this.limits.maxInitrdBytes,
            maxEntries: this.limits.maxCpioEntries,
            allowDevices: false,
            removeOnError: true,
          });
        } catch (err) {
          if (err instanceof ExtractLimitError) throw new NodeError(Errno.EFBIG, `the image's CPIO initrd is too large: ${err.message}`);
          if (err instanceof ExtractError || err instanceof CpioFormatError) throw new NodeError(Errno.EINVAL, `the image's CPIO initrd is invalid: ${err.message}`);
          throw err;
        }
        await rm(tmp, { force: true });
      }
      await writeFile(ready, `${format}\n`);
      return { kind: format, path: tree, layer: layer.text };
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Copies `unikraft/bin/initrd` out of the single-file layer tar. */
  private async extractInitrd(layer: Digest, out: string): Promise<void> {
    const stream = await this.options.blobs.open(layer);
    let found = false;
    try {
      for await (const entry of readTar(stream as AsyncIterable<Buffer>)) {
        const name = entry.header.name.replace(/^\.?\//, '');
        if (name === INITRD_ENTRY && entry.header.type === 'file') {
          if (entry.header.size > this.limits.maxInitrdBytes) throw new NodeError(Errno.EFBIG, 'initrd is larger than the node accepts');
          await pipeline(Readable.from(entry.body), createWriteStream(out, { mode: 0o600 }));
          found = true;
          break;
        }
        if (name !== KERNEL_ENTRY) for await (const _ of entry.body) void _;
      }
    } finally {
      stream.destroy();
    }
    if (!found) throw new NodeError(Errno.EINVAL, `the image's last layer has no ${INITRD_ENTRY}`);
  }

  // ---- catalog ------------------------------------------------------------

  async list(): Promise<CatalogImage[]> {
    const out: CatalogImage[] = [];
    const { metadata, blobs } = this.options;
    for (const repository of await metadata.listRepositories()) {
      for (const m of await metadata.listManifests(repository)) {
        let view: ImageManifestView;
        try {
          view = await this.readManifest(repository, m.digest);
        } catch {
          continue;
        }
        if (view.layers.length === 0) continue; // an index child listed on its own, or an artifact
        let config: ImageConfig = {};
        if (view.config) {
          try {
            config = parseImageConfig(await blobs.readBytes(parseDigest(view.config.digest), this.limits.maxConfigBytes));
          } catch {
            config = {};
          }
        }
        const tags = (await metadata.tagsOf(repository, m.digest)).map((t) => `${repository}:${t}`);
        const img: CatalogImage = {
          repository: `${this.options.registryHost}/${repository}`,
          digest: m.digest,
          createdAt: new Date(m.createdAt),
          owner: repository.split('/')[0] ?? repository,
          tags,
          initrdOrRom: view.layers.length > 0,
          sizeInBytes: view.layers.reduce((a, l) => a + l.size, 0) + (view.config?.size ?? 0),
          users: [repository.split('/')[0] ?? repository],
        };
        const args = [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])];
        if (args.length > 0) img.args = args;
        const env = envMap(config.Env);
        if (Object.keys(env).length > 0) img.env = env;
        out.push(img);
      }
    }
    return out;
  }
}
