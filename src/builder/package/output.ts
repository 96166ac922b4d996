/**
 * Where a built image goes: a registry reference (pushed with the client,
 * existing blobs skipped), an OCI image layout directory, or an `.oci.tar`
 * file (the same layout, tarred deterministically).
 * (The layout dir and its tar are src/oci/layout.ts's.)
 */
import { mkdir, readFile, rm, mkdtemp } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { layoutTarStream, writeLayout as writeOciLayout } from '../../oci/index.js';
import { pushImage, type PushImageResult } from '../../client/index.js';
import type { RegistryClient } from '../../client/index.js';
import type { ProgressListener } from '../../client/index.js';
import type { StoredBlob } from './blobs.js';
import { commitFileAtomic } from '../../util/index.js';

export type OutputTarget = { kind: 'registry'; ref: string } | { kind: 'layout'; dir: string } | { kind: 'archive'; file: string };

/** `./x.oci.tar`, `x.tar` → archive; a path starting with `.` or `/` → layout dir; anything else → registry ref. */
export function parseOutput(text: string, cwd: string): OutputTarget {
  if (/\.tar$/.test(text)) return { kind: 'archive', file: resolve(cwd, text) };
  if (text.startsWith('.') || text.startsWith('/')) return { kind: 'layout', dir: resolve(cwd, text) };
  return { kind: 'registry', ref: text };
}

export interface ImageBlobs {
  manifest: StoredBlob;
  manifestMediaType: string;
  /** Config and layers. */
  blobs: StoredBlob[];
}

/** Writes (or adds to) an OCI image layout directory with src/oci's layout writer; `refName` tags the manifest. */
export async function writeLayout(dir: string, image: ImageBlobs, refName: string | undefined): Promise<void> {
  await writeOciLayout(dir, {
    blobs: [...image.blobs, image.manifest].map((b) => ({ open: () => createReadStream(b.path), digest: b.digest.text, size: b.size })),
    manifests: [
      {
        descriptor: { mediaType: image.manifestMediaType, digest: image.manifest.digest.text, size: image.manifest.size },
        ...(refName ? { refName } : {}),
      },
    ],
  });
}

/** Writes an `.oci.tar`: the layout as src/oci's deterministic tar (0:0, mtime 0, bytewise order). */
export async function writeLayoutArchive(file: string, image: ImageBlobs, refName: string | undefined): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const work = await mkdtemp(join(dirname(file), `.${basename(file)}-`));
  try {
    await writeLayout(join(work, 'layout'), image, refName);
    const tmp = join(work, 'out.tar');
    await pipeline(layoutTarStream(join(work, 'layout')), createWriteStream(tmp));
    await commitFileAtomic(tmp, file);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Pushes to `repository:tag` (blobs the registry has are skipped by the client). */
export async function pushToRegistry(
  client: RegistryClient,
  repository: string,
  tag: string | undefined,
  image: ImageBlobs,
  onProgress?: ProgressListener,
): Promise<PushImageResult> {
  const byDigest = new Map(image.blobs.map((b) => [b.digest.text, b]));
  return pushImage({
    client,
    repository,
    ...(tag ? { tag } : {}),
    manifest: { bytes: await readFile(image.manifest.path), mediaType: image.manifestMediaType },
    blobs: (d) => {
      const b = byDigest.get(d.digest);
      if (!b) throw new Error(`blob ${d.digest} is not in the build's blob store`);
      return { size: b.size, open: () => createReadStream(b.path) };
    },
    ...(onProgress ? { onProgress } : {}),
  });
}
