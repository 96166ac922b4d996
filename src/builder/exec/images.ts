/**
 * FROM <image> / COPY --from=<image>: fetch an image from a registry with the
 * client (digests verified while streaming; `urls[]` never followed), pick the
 * linux/amd64 manifest from an index, and apply its layers (gzip, zstd or
 * plain; whiteouts) with src/oci's confined extractor and its limits.
 *
 * Layer blobs are kept in the build cache's blob dir so a second stage or
 * build using the same base does not download it again.
 */
import { createReadStream } from 'node:fs';
import { parseReference, type ImageReference, type ReferenceRules } from '../../oci/index.js';
import { parseDigest } from '../../oci/index.js';
import { applyLayers, type ExtractLimits } from '../../oci/index.js';
import { isIndexMediaType } from '../../oci/index.js';
import { layerSource } from './layers.js';
import type { RegistryClient } from '../../client/index.js';
import type { BlobDir } from '../package/blobs.js';
import type { BaseImage, ImageResolver, StageConfig } from './executor.js';
import type { ImageConfig } from '../dockerfile/plan.js';

export interface RegistryResolverOptions {
  /** A client for the registry a reference names (with its mirrors, auth). */
  clientFor: (domain: string) => RegistryClient;
  blobs: BlobDir;
  rules?: Partial<ReferenceRules>;
  limits?: Partial<ExtractLimits>;
  architecture?: string;
  os?: string;
  signal?: AbortSignal;
  onWarning?: (message: string) => void;
}

interface ImageConfigDoc {
  config?: { Env?: string[]; Cmd?: string[]; Entrypoint?: string[]; WorkingDir?: string; User?: string; Labels?: Record<string, string> | null; Shell?: string[] };
}

interface ManifestDoc {
  mediaType?: string;
  config?: { digest: string; size: number };
  layers?: Array<{ digest: string; size: number; mediaType: string }>;
  manifests?: Array<{ digest: string; mediaType: string; platform?: { architecture?: string; os?: string } }>;
}

export function stageConfigFromImage(doc: ImageConfigDoc): Partial<StageConfig> {
  const c = doc.config ?? {};
  const out: Partial<StageConfig> = { env: c.Env ?? [], labels: c.Labels ?? {}, workingDir: c.WorkingDir || '/', user: c.User ?? '' };
  if (c.Cmd) out.cmd = c.Cmd;
  if (c.Entrypoint) out.entrypoint = c.Entrypoint;
  if (c.Shell) out.shell = c.Shell;
  return out;
}

/** Fetches a blob into the blob dir once; answers its path. */
async function fetchBlob(client: RegistryClient, repo: string, digest: string, size: number, blobs: BlobDir, signal?: AbortSignal): Promise<string> {
  const d = parseDigest(digest);
  const have = await blobs.has(d);
  if (have) return have.path;
  const stored = await blobs.putStream(client.getBlob(repo, d, { size, ...(signal ? { signal } : {}) }));
  if (stored.digest.text !== d.text) throw new Error(`blob ${digest} arrived with digest ${stored.digest.text}`);
  return stored.path;
}

export interface PulledImage {
  ref: ImageReference;
  manifestDigest: string;
  manifest: Buffer;
  config: Record<string, unknown>;
  layers: Array<{ path: string; mediaType: string; digest: string; size: number }>;
}

/** Pulls an image's manifest, config and layer blobs into `blobs`. */
export async function pullToBlobDir(refText: string, opts: RegistryResolverOptions): Promise<PulledImage> {
  const ref = parseReference(refText, opts.rules ?? {});
  const client = opts.clientFor(ref.domain);
  const want = { architecture: opts.architecture ?? 'amd64', os: opts.os ?? 'linux' };
  let fetched = await client.getManifest(ref.path, ref.digest ?? (ref.tag as string), opts.signal);
  let doc = JSON.parse(fetched.bytes.toString('utf8')) as ManifestDoc;
  if (isIndexMediaType(fetched.mediaType || doc.mediaType || '') || doc.manifests) {
    const pick =
      doc.manifests?.find((m) => m.platform?.architecture === want.architecture && m.platform?.os === want.os) ??
      doc.manifests?.find((m) => !m.platform) ??
      (doc.manifests?.length === 1 ? doc.manifests[0] : undefined);
    if (!pick) throw new Error(`${refText} has no ${want.os}/${want.architecture} image`);
    fetched = await client.getManifest(ref.path, parseDigest(pick.digest), opts.signal);
    doc = JSON.parse(fetched.bytes.toString('utf8')) as ManifestDoc;
  }
  if (!doc.config || !Array.isArray(doc.layers)) throw new Error(`${refText}: manifest has no config or layers`);
  const configPath = await fetchBlob(client, ref.path, doc.config.digest, doc.config.size, opts.blobs, opts.signal);
  const config = JSON.parse(await readSmall(configPath)) as Record<string, unknown>;
  const layers = [];
  for (const l of doc.layers) {
    layers.push({ path: await fetchBlob(client, ref.path, l.digest, l.size, opts.blobs, opts.signal), mediaType: l.mediaType, digest: l.digest, size: l.size });
  }
  return { ref, manifestDigest: fetched.digest.text, manifest: fetched.bytes, config, layers };
}

async function readSmall(path: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of createReadStream(path)) {
    size += (c as Buffer).length;
    if (size > 4 << 20) throw new Error('image config larger than 4 MiB');
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** An ImageResolver over registries: what FROM and COPY --from=<image> use. */
export function registryImageResolver(opts: RegistryResolverOptions): ImageResolver {
  return async (refText: string): Promise<BaseImage> => {
    const pulled = await pullToBlobDir(refText, opts);
    return {
      key: pulled.manifestDigest,
      config: stageConfigFromImage(pulled.config as ImageConfigDoc),
      imageConfig: ((pulled.config as { config?: ImageConfig }).config ?? {}) as ImageConfig,
      materialize: async (dir: string) => {
        await applyLayers(
          dir,
          pulled.layers.map((l) => layerSource(l.path, l.mediaType)),
          { ...(opts.limits ?? {}), ...(opts.onWarning ? { onWarning: opts.onWarning } : {}) },
        );
      },
    };
  };
}
