/**
 * Pushes the image of an OCI layout directory (as `unikraft build` writes it)
 * to a registry with the user's token, streaming each blob from its file and
 * reporting progress. Used by `run DIR` (build, push, run in one step).
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest } from '../../../oci/index.js';
import { pushImage, RegistryClient, type ProgressListener } from '../../../client/index.js';

export interface PushLayoutOptions {
  layoutDir: string;
  /** `host:port` of the registry (plain HTTP for loopback). */
  registryHost: string;
  repository: string;
  tag: string;
  token?: string;
  onProgress?: ProgressListener;
  signal?: AbortSignal;
}

/** Largest index.json / manifest read (bytes). */
export const MAX_LAYOUT_DOCUMENT_BYTES = 4 * 1024 * 1024;

async function readSmall(path: string): Promise<Buffer> {
  const s = await stat(path);
  if (s.size > MAX_LAYOUT_DOCUMENT_BYTES) throw new Error(`${path} is larger than ${MAX_LAYOUT_DOCUMENT_BYTES} bytes`);
  return readFile(path);
}

export async function pushLayout(opts: PushLayoutOptions): Promise<{ digest: string; uploaded: number; total: number }> {
  const index = JSON.parse((await readSmall(join(opts.layoutDir, 'index.json'))).toString('utf8')) as { manifests?: { digest?: string; mediaType?: string }[] };
  const entry = index.manifests?.[index.manifests.length - 1];
  if (!entry?.digest) throw new Error(`no manifest in ${opts.layoutDir}/index.json`);
  const blobPath = (digest: string): string => {
    const d = parseDigest(digest);
    return join(opts.layoutDir, 'blobs', d.algorithm, d.hex);
  };
  const bytes = await readSmall(blobPath(entry.digest));
  const mediaType = entry.mediaType ?? (JSON.parse(bytes.toString('utf8')) as { mediaType?: string }).mediaType ?? 'application/vnd.oci.image.manifest.v1+json';
  const client = new RegistryClient({ host: opts.registryHost, ...(opts.token ? { credentials: { token: opts.token } } : {}) });
  try {
    const result = await pushImage({
      client,
      repository: opts.repository,
      tag: opts.tag,
      manifest: { bytes, mediaType },
      blobs: (desc) => ({ size: desc.size, open: () => createReadStream(blobPath(desc.digest)) }),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const uploaded = result.blobs.filter((b) => b.action === 'uploaded').reduce((n, b) => n + b.size, 0);
    const total = result.blobs.reduce((n, b) => n + b.size, 0) + bytes.length;
    return { digest: result.digest.text, uploaded, total };
  } finally {
    client.close();
  }
}
