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
 *    by `<cacheDir>/<hex>.ready` written last. Nothing half-made is ever used:
 *    a CPIO is extracted into a temp sibling (`.tmp-*`), flushed to disk, then
 *    renamed into place; the marker (`erofs` or `cpio`, nothing else is valid)
 *    is written atomically after that. Without a valid marker, a tree / image
 *    is discarded and rebuilt; `.tmp-*` leftovers of a crash are removed at the
 *    first build of the next process.
 *  - Nothing is marked ready before admission (images/admission.ts) accepted
 *    it: no device nodes, fifos, sockets or setuid/setgid files.
 *  - The cache directory is 0700 (chmod'ed at start too): the trees are
 *    tenants' root filesystems, which no other local user of the node may
 *    reach.
 */
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, open, readFile, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { parseDigest, tryParseDigest, type Digest } from '../../oci/index.js';
import { ImageReferenceError, isValidRepositoryPath, parseUnikraftReference, type ImageReference } from '../../oci/index.js';
import { CpioFormatError, extractCpio } from '../../oci/index.js';
import { ExtractError, ExtractLimitError } from '../../oci/index.js';
import type { BlobStore, MetadataStore } from '../../store/index.js';
import type { RegistryService } from '../../registry/index.js';
import { RegistryClient, manifestBlobs, RegistryError as ClientRegistryError, RegistryClientError, type Descriptor } from '../../client/index.js';
import { isMountPoint, mountErofs, unmount } from '../../sandbox/index.js';
import { fsyncDir, isStorageFull, syncFileSystem, writeFileAtomic } from '../../util/index.js';
import { Errno, NodeError, insufficientStorage } from '../errors.js';
import type { AccountPrincipal } from '../../auth/index.js';
import type { ImageConfig, ImageRequest, ImageResolver, ResolvedImage, RootfsHandle } from './resolver.js';
import type { CatalogImage, ImageCatalog } from './catalog.js';
import { INITRD_ENTRY, layerError, readUnikraftLayer, shortDigest, unikraftLayers } from './layers.js';
import { admitCpio, admitTree } from './admission.js';
import { ImageCacheBudget } from './cache.js';
import { directoryBytes } from '../../metrics/index.js';

export { INITRD_ENTRY };

/** Tar headers and padding around the one file of a Unikraft layer (bytes allowed past the initrd limit). */
const LAYER_TAR_OVERHEAD = 1024 * 1024;

const TEMP_PREFIX = '.tmp-';

/** Creates `dir` (and parents) and makes it 0700 even if it already existed. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** The format a `.ready` marker records, or undefined when it is missing or not exactly a marker. */
async function readReadyMarker(path: string): Promise<'erofs' | 'cpio' | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  return text === 'erofs\n' ? 'erofs' : text === 'cpio\n' ? 'cpio' : undefined;
}

export interface LocalImagesLimits {
  /** Largest image config read into memory. */
  maxConfigBytes: number;
  /** Largest manifest read into memory. */
  maxManifestBytes: number;
  /** Largest initrd accepted (bytes); also bounds a CPIO's extracted size and a layer's decompressed size. */
  maxInitrdBytes: number;
  /** Largest kernel layer accepted, decompressed (bytes). */
  maxKernelBytes: number;
  /** Most entries in a CPIO initrd. */
  maxCpioEntries: number;
}

export const DEFAULT_LOCAL_IMAGES_LIMITS: LocalImagesLimits = {
  maxConfigBytes: 1024 * 1024,
  maxManifestBytes: 4 * 1024 * 1024,
  maxInitrdBytes: 4 * 1024 * 1024 * 1024,
  maxKernelBytes: 256 * 1024 * 1024,
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
  /**
   * Base URLs of other registries images may be pulled from (`https://registry.example.com`).
   * Without them a reference naming any host but the central's or this node's is refused.
   */
  allowedRegistries?: readonly string[];
  limits?: Partial<LocalImagesLimits>;
  /** A size budget for the cache (see cache.ts); absent: no eviction. */
  cache?: {
    budgetBytes: number;
    /** Where use times persist. */
    stateFile: string;
    /** The local registry's data directory (its blobs count against the budget). */
    registryDir: string;
    /** Images (`repository@digest`) live or standby instances need; undefined until known. */
    inUse: () => ReadonlySet<string> | undefined;
    /** Images used this recently are kept (default EVICTION_GRACE_MS). */
    graceMs?: number;
  };
}

/** What the runtime mounts: a read-only directory tree holding the image's root filesystem. */
export interface MicroRootfs extends RootfsHandle {
  kind: 'erofs' | 'cpio';
  /** Read-only lower directory for the instance's overlay. */
  path: string;
  /** Digest of the initrd layer (the cache key). */
  layer: string;
}

/** Where an image reference's bytes come from, decided by the registry host it names. */
export type ImageOrigin =
  | { kind: 'central'; baseUrl: string }
  | { kind: 'local' }
  | { kind: 'allowed'; baseUrl: string };

export interface ImageLocation {
  origin: ImageOrigin;
  /** Repository in the node's local registry (the cache). */
  repository: string;
  /** Repository at the origin. */
  remotePath: string;
  tag?: string;
  digest?: Digest;
}

export interface ImageHostRules {
  centralUrl?: string;
  /** This node's own registry (`host:port`). */
  registryHost: string;
  allowedRegistries?: readonly string[];
}

function hostOfUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new NodeError(Errno.EINVAL, `${what} "${url}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new NodeError(Errno.EINVAL, `${what} "${url}" is not an http(s) URL`);
  return u.host.toLowerCase();
}

/** The node's own registry under the names a client on this host may use for it. */
function ownHosts(registryHost: string): Set<string> {
  const host = registryHost.toLowerCase();
  const out = new Set([host]);
  const m = /^(.*):([0-9]+)$/.exec(host);
  if (m && ['127.0.0.1', '[::1]', '0.0.0.0', '[::]', 'localhost'].includes(m[1] as string)) {
    for (const alias of ['localhost', '127.0.0.1', '[::1]']) out.add(`${alias}:${m[2] as string}`);
  }
  return out;
}

/** A repository path component standing for another registry's host (`reg.example.com:5000` → `ext-reg-example-com-5000`). */
function foreignNamespace(host: string): string {
  return `ext-${host.replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '')}`;
}

/**
 * Reads an image reference with the platform's rules (src/oci/reference.ts
 * `parseUnikraftReference`): `base-compat:latest` is `official/base-compat` on the
 * central registry, `alice/app` is `alice/app` there. A reference naming a host is
 * accepted for the central's host and this node's own registry; any other host only
 * when listed in `allowedRegistries`, and otherwise refused (EACCES) before any
 * connection is made (security-cases.md row 10: the node never fetches from, or
 * sends credentials to, a host it was not configured for).
 */
export function locateImage(url: string, rules: ImageHostRules): ImageLocation {
  const central = rules.centralUrl !== undefined ? hostOfUrl(rules.centralUrl, 'central registry') : undefined;
  let ref: ImageReference;
  try {
    ref = parseUnikraftReference(url, central ?? rules.registryHost.toLowerCase());
  } catch (err) {
    throw new NodeError(Errno.EINVAL, err instanceof ImageReferenceError ? err.message : 'invalid image reference');
  }
  const domain = ref.domain.toLowerCase();
  let origin: ImageOrigin;
  let repository = ref.path;
  if (central !== undefined && rules.centralUrl !== undefined && domain === central) {
    origin = { kind: 'central', baseUrl: rules.centralUrl };
  } else if (ownHosts(rules.registryHost).has(domain)) {
    origin = { kind: 'local' };
  } else {
    const allowed = (rules.allowedRegistries ?? []).find((u) => hostOfUrl(u, 'allowed registry') === domain);
    if (allowed === undefined) {
      throw new NodeError(
        Errno.EACCES,
        `image registry "${ref.domain}" is not allowed on this node (images come from the central registry${central ? ` ${central}` : ''} or this node's registry; other registries must be configured as allowed)`,
      );
    }
    origin = { kind: 'allowed', baseUrl: allowed };
    repository = `${foreignNamespace(domain)}/${ref.path}`;
    if (!isValidRepositoryPath(repository)) throw new NodeError(Errno.EINVAL, `image reference "${url}" is too long to cache on this node`);
  }
  const out: ImageLocation = { origin, repository, remotePath: ref.path };
  if (ref.digest) out.digest = ref.digest;
  else if (ref.tag !== undefined) out.tag = ref.tag;
  return out;
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
  /** Kernel layers already read through once by this process (digest → check). */
  private readonly kernels = new Map<string, Promise<void>>();
  private cacheReady: Promise<void> | undefined;
  /** The size budget (absent: unlimited). */
  readonly budget: ImageCacheBudget | undefined;
  /** Images pulled from the central registry since their last resolve (`repository@digest`). */
  private readonly pulledFromCentral = new Set<string>();

  constructor(private readonly options: LocalImagesOptions) {
    this.limits = { ...DEFAULT_LOCAL_IMAGES_LIMITS, ...options.limits };
    this.client = options.centralUrl ? new RegistryClient({ baseUrl: options.centralUrl }) : undefined;
    const cache = options.cache;
    if (cache) {
      this.budget = new ImageCacheBudget({
        budgetBytes: cache.budgetBytes,
        stateFile: cache.stateFile,
        inUse: cache.inUse,
        ...(cache.graceMs !== undefined ? { graceMs: cache.graceMs } : {}),
        measure: async () => (await directoryBytes(cache.registryDir)) + (await directoryBytes(options.cacheDir)),
        evict: (ref) => this.evict(ref),
      });
    }
  }

  close(): void {
    this.client?.close();
  }

  // ---- resolver -----------------------------------------------------------

  /** Where `url`'s image comes from on this node (see `locateImage`); EACCES for a host not allowed. */
  locate(url: string): ImageLocation {
    const rules: ImageHostRules = { registryHost: this.options.registryHost };
    if (this.options.centralUrl !== undefined) rules.centralUrl = this.options.centralUrl;
    if (this.options.allowedRegistries !== undefined) rules.allowedRegistries = this.options.allowedRegistries;
    return locateImage(url, rules);
  }

  async resolve(request: ImageRequest, _principal: AccountPrincipal): Promise<ResolvedImage> {
    const loc = this.locate(request.url);
    const digest = await this.find(loc, request);
    const view = await this.readManifest(loc.repository, digest);
    const config = view.config ? parseImageConfig(await this.options.blobs.readBytes(parseDigest(view.config.digest), this.limits.maxConfigBytes)) : {};
    const { initrd, others } = unikraftLayers(view.layers);
    for (const layer of others) await this.checkKernelLayer(layer);
    const rootfs = await this.prepareRootfs(initrd);
    const digestRef = `${loc.repository}@${digest}`;
    if (this.budget) {
      const pulled = this.pulledFromCentral.delete(digestRef);
      this.budget.touch(digestRef, pulled);
      // What the pull (and its rootfs) added may take the cache over its budget.
      if (pulled) await this.budget.enforce(digestRef);
    }
    return { digestRef, config, rootfs };
  }

  /**
   * Removes a pulled image (cache eviction, see cache.ts): its manifests, then each blob no
   * other manifest references, with the root filesystem prepared from it.
   */
  private async evict(digestRef: string): Promise<void> {
    const at = digestRef.lastIndexOf('@');
    const repository = digestRef.slice(0, at);
    const digest = digestRef.slice(at + 1);
    const manifests = [digest];
    const blobs: string[] = [];
    try {
      const top = manifestBlobs(await this.options.blobs.readBytes(parseDigest(digest), this.limits.maxManifestBytes));
      let parts = top;
      if (top.children.length > 0) {
        const child = (top.children[0] as Descriptor).digest;
        manifests.push(child);
        parts = manifestBlobs(await this.options.blobs.readBytes(parseDigest(child), this.limits.maxManifestBytes));
      }
      if (parts.config) blobs.push(parts.config.digest);
      for (const l of parts.layers) blobs.push(l.digest);
    } catch {
      // Unreadable: its manifest rows still go; blobs are left to gc.
    }
    for (const m of manifests) await this.options.metadata.deleteManifest(repository, m);
    for (const d of [...manifests, ...blobs]) {
      if (!(await this.options.metadata.releaseUnreferenced(d))) continue;
      const parsed = parseDigest(d);
      await this.dropRootfs(parsed);
      await this.options.blobs.delete(parsed);
    }
  }

  /** Unmounts and removes the rootfs prepared from layer `layer`, if any. */
  private async dropRootfs(layer: Digest): Promise<void> {
    this.rootfs.delete(layer.text);
    this.kernels.delete(layer.text);
    const dir = this.options.cacheDir;
    const tree = join(dir, layer.hex);
    await rm(join(dir, `${layer.hex}.ready`), { force: true });
    await unmount(tree, { lazyFallback: true }).catch(() => undefined);
    await rm(tree, { recursive: true, force: true });
    await rm(join(dir, `${layer.hex}.img`), { force: true });
  }

  /**
   * Finds the manifest digest locally or pulls it, following the pull policy.
   * Tags of an allowed foreign registry are never cached here (only digests), so
   * a local tag can never stand in for another registry's.
   */
  private async find(loc: ImageLocation, request: ImageRequest): Promise<string> {
    const { repository } = loc;
    const local = async (): Promise<string | undefined> => {
      if (loc.digest) return (await this.options.metadata.getManifest(repository, loc.digest.text)) ? loc.digest.text : undefined;
      if (loc.origin.kind === 'allowed') return undefined;
      return this.options.metadata.resolveTag(repository, loc.tag ?? 'latest');
    };
    if (request.pullPolicy !== 'always' || loc.digest || loc.origin.kind === 'local') {
      const found = await local();
      if (found) return found;
    }
    if (loc.origin.kind === 'local') throw new NodeError(Errno.ENOENT, `image ${request.url} is not in this node's registry`);
    if (request.pullPolicy === 'never') throw new NodeError(Errno.ENOENT, `image ${request.url} is not on this node (pull_policy never)`);
    const reference = loc.digest?.text ?? loc.tag ?? 'latest';
    const key = `${repository}\n${reference}`;
    let pull = this.pulls.get(key);
    if (!pull) {
      pull = this.pull(loc.origin, loc.remotePath, repository, reference, request.credentials).finally(() => this.pulls.delete(key));
      this.pulls.set(key, pull);
    }
    return pull;
  }

  /**
   * Pulls a manifest and its blobs from `origin` (the central registry or an allowed
   * one) into the local registry as `repository`; answers the manifest digest.
   */
  private async pull(
    origin: Exclude<ImageOrigin, { kind: 'local' }>,
    remotePath: string,
    repository: string,
    reference: string,
    credentials: ImageRequest['credentials'],
  ): Promise<string> {
    const shared = origin.kind === 'central' && !credentials ? this.client : undefined;
    const client = shared ?? new RegistryClient({ baseUrl: origin.baseUrl, ...(credentials ? { credentials } : {}) });
    // Blobs this pull brought in; a pull that fails takes them out again (a half-pulled image
    // holds disk no manifest accounts for, and gc would only find it much later).
    const pulled: Digest[] = [];
    try {
      const top = await client.getManifest(remotePath, reference);
      const { config, layers, children } = manifestBlobs(top.bytes);
      let bytes = top.bytes;
      let mediaType = top.mediaType;
      let blobsOf = config ? [config, ...layers] : layers;
      if (children.length > 0) {
        // An index: the first child is the image (ours carry exactly one platform).
        const child = children[0] as Descriptor;
        const m = await client.getManifest(remotePath, child.digest);
        const inner = manifestBlobs(m.bytes);
        if (inner.children.length > 0) throw new NodeError(Errno.EINVAL, 'nested image indexes are not supported');
        blobsOf = inner.config ? [inner.config, ...inner.layers] : inner.layers;
        await this.storeBlobs(client, remotePath, repository, blobsOf, pulled);
        await this.options.service.putManifest(repository, { kind: 'digest', digest: m.digest }, m.bytes, m.mediaType);
        bytes = top.bytes;
        mediaType = top.mediaType;
        blobsOf = [];
      }
      await this.storeBlobs(client, remotePath, repository, blobsOf, pulled);
      const isDigest = tryParseDigest(reference) !== undefined;
      const ref =
        isDigest || origin.kind === 'allowed'
          ? { kind: 'digest' as const, digest: isDigest ? parseDigest(reference) : top.digest }
          : { kind: 'tag' as const, tag: reference };
      const stored = await this.options.service.putManifest(repository, ref, bytes, mediaType);
      const digest = children.length > 0 ? (children[0] as Descriptor).digest : stored.digest;
      // Only what the central registry can give again is evictable (see cache.ts).
      if (origin.kind === 'central') this.pulledFromCentral.add(`${repository}@${digest}`);
      return digest;
    } catch (err) {
      await this.discardPulled(pulled);
      if (err instanceof NodeError) throw err;
      if (isStorageFull(err)) throw insufficientStorage(`pulling ${repository}:${reference}: no space left on the node's image store`, err);
      if (isNotFound(err)) throw new NodeError(Errno.ENOENT, `image ${repository}:${reference} not found`);
      if (err instanceof ClientRegistryError && (err.status === 401 || err.status === 403)) {
        throw new NodeError(Errno.EACCES, `access to image ${repository} refused`);
      }
      if (err instanceof RegistryClientError) throw new NodeError(Errno.EIO, `pulling ${repository}:${reference}: ${err.message}`, 500, {}, { cause: err });
      throw err;
    } finally {
      if (client !== shared) client.close();
    }
  }

  /**
   * Removes the blobs a failed pull stored, unless a manifest came to reference one meanwhile
   * (another image sharing a layer): the same one-transaction release gc uses.
   */
  private async discardPulled(stored: readonly Digest[]): Promise<void> {
    for (const digest of stored) {
      try {
        if (await this.options.metadata.releaseUnreferenced(digest.text)) await this.options.blobs.delete(digest);
      } catch {
        // Best effort: what stays is swept by gc.
      }
    }
  }

  private async storeBlobs(client: RegistryClient, remotePath: string, repository: string, blobs: Descriptor[], pulled: Digest[]): Promise<void> {
    for (const d of blobs) {
      const digest = parseDigest(d.digest);
      const have = await this.options.blobs.stat(digest);
      if (have && have.size === d.size) {
        await this.options.metadata.linkBlob(repository, digest.text, d.size);
        continue;
      }
      const stream = client.getBlob(remotePath, digest, { size: d.size });
      await this.options.service.putMonolithic(repository, digest, stream, d.size);
      pulled.push(digest);
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

  /**
   * Reads a non-initrd layer through once (digest, decompression, contents): an image
   * whose other layers are not Unikraft kernel layers is refused at create, not at boot.
   */
  private checkKernelLayer(layer: Descriptor): Promise<void> {
    let p = this.kernels.get(layer.digest);
    if (!p) {
      p = (async () => {
        const got = await readUnikraftLayer(this.options.blobs, layer, { maxBytes: this.limits.maxKernelBytes + LAYER_TAR_OVERHEAD });
        if (got.initrd) throw layerError(layer, Errno.EINVAL, 'a second initrd layer (the initrd is the last layer or the one annotated org.unikraft.kernel.initrd)');
        if (!got.kernel) throw layerError(layer, Errno.EINVAL, 'is not a Unikraft kernel layer (no unikraft/bin/kernel)');
      })();
      p.catch(() => this.kernels.delete(layer.digest));
      this.kernels.set(layer.digest, p);
    }
    return p;
  }

  // ---- rootfs cache -------------------------------------------------------

  /** Prepares (once per layer digest) the read-only tree of an initrd layer. */
  prepareRootfs(layer: Descriptor): Promise<MicroRootfs> {
    let p = this.rootfs.get(layer.digest);
    if (!p) {
      p = this.buildRootfs(layer);
      p.catch(() => this.rootfs.delete(layer.digest));
      this.rootfs.set(layer.digest, p);
    }
    return p;
  }

  /**
   * Makes the cache directory private (0700: it holds tenants' trees, setuid
   * files included) and removes what a crash left behind: temp initrds and
   * half-extracted trees. Runs once, before the first build of this process.
   */
  private prepareCacheDir(): Promise<void> {
    this.cacheReady ??= (async () => {
      const dir = this.options.cacheDir;
      await ensurePrivateDir(dir);
      for (const name of await readdir(dir)) {
        if (name.startsWith(TEMP_PREFIX)) await rm(join(dir, name), { recursive: true, force: true });
      }
    })();
    const p = this.cacheReady;
    p.catch(() => {
      if (this.cacheReady === p) this.cacheReady = undefined;
    });
    return p;
  }

  private async buildRootfs(descriptor: Descriptor): Promise<MicroRootfs> {
    const layer = parseDigest(descriptor.digest);
    await this.prepareCacheDir();
    const dir = this.options.cacheDir;
    const img = join(dir, `${layer.hex}.img`);
    const tree = join(dir, layer.hex);
    const ready = join(dir, `${layer.hex}.ready`);
    const marked = await readReadyMarker(ready);
    if (marked !== undefined && existsSync(marked === 'erofs' ? img : tree)) {
      if (marked === 'erofs' && !isMountPoint(tree)) {
        await mkdir(tree, { recursive: true, mode: 0o700 });
        await mountErofs(img, tree);
      }
      return { kind: marked, path: tree, layer: layer.text };
    }
    // No valid marker: whatever is there is half-made (a crash mid-build) and is rebuilt.
    await rm(ready, { force: true });
    await unmount(tree, { lazyFallback: true });
    await rm(tree, { recursive: true, force: true });
    await rm(img, { force: true });
    const tmp = join(dir, `${TEMP_PREFIX}${randomUUID()}`);
    const tmpTree = join(dir, `${TEMP_PREFIX}${randomUUID()}.d`);
    try {
      await this.extractInitrd(descriptor, tmp);
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
      if (!format) throw layerError(descriptor, Errno.EINVAL, 'its initrd is neither EROFS nor CPIO newc');
      const what = `layer ${shortDigest(descriptor.digest)}`;
      if (format === 'erofs') {
        await rename(tmp, img);
        await fsyncDir(dir);
        await mkdir(tree, { recursive: true, mode: 0o700 });
        await mountErofs(img, tree);
        try {
          await admitTree(tree, what);
        } catch (err) {
          await unmount(tree, { lazyFallback: true });
          await rm(tree, { recursive: true, force: true });
          await rm(img, { force: true });
          throw err;
        }
      } else {
        try {
          await admitCpio(tmp, what);
        } catch (err) {
          if (err instanceof CpioFormatError) throw layerError(descriptor, Errno.EINVAL, `its CPIO initrd is invalid: ${err.message}`);
          throw err;
        }
        // Confined like a layer: devices skipped (the sandbox gives every instance its own /dev).
        await mkdir(tmpTree, { mode: 0o700 });
        try {
          await extractCpio(tmpTree, createReadStream(tmp), {
            compression: 'none',
            maxBytes: this.limits.maxInitrdBytes,
            maxEntries: this.limits.maxCpioEntries,
            allowDevices: false,
            removeOnError: true,
          });
        } catch (err) {
          if (err instanceof ExtractLimitError) throw layerError(descriptor, Errno.EFBIG, `its CPIO initrd is too large: ${err.message}`);
          if (err instanceof ExtractError || err instanceof CpioFormatError) throw layerError(descriptor, Errno.EINVAL, `its CPIO initrd is invalid: ${err.message}`);
          throw err;
        }
        await rm(tmp, { force: true });
        // The tree's data and metadata reach the disk before it takes its final name.
        await syncFileSystem(tmpTree);
        await rename(tmpTree, tree);
        await fsyncDir(dir);
      }
      // The marker goes last: a tree or image without one is never used.
      await writeFileAtomic(ready, `${format}\n`);
      return { kind: format, path: tree, layer: layer.text };
    } finally {
      await rm(tmp, { force: true });
      await rm(tmpTree, { recursive: true, force: true });
    }
  }

  /** Writes the layer's `unikraft/bin/initrd` (decompressed, digest checked) to `out`. */
  private async extractInitrd(layer: Descriptor, out: string): Promise<void> {
    const got = await readUnikraftLayer(this.options.blobs, layer, { maxBytes: this.limits.maxInitrdBytes + LAYER_TAR_OVERHEAD, initrdOut: out });
    if (!got.initrd) throw layerError(layer, Errno.EINVAL, `is not a Unikraft initrd layer (no ${INITRD_ENTRY})`);
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
