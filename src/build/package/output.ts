/**
 * Where a built image goes: a registry reference (pushed with the client,
 * existing blobs skipped), an OCI image layout directory, or an `.oci.tar`
 * file (the same layout, tarred deterministically).
 *
 * Layout (OCI image layout spec):
 *   <dir>/oci-layout            {"imageLayoutVersion":"1.0.0"}
 *   <dir>/index.json            manifests[] with org.opencontainers.image.ref.name
 *   <dir>/blobs/sha256/<hex>
 */
import { copyFile, mkdir, readFile, rename, rm, stat, open, mkdtemp } from 'node:fs/promises';
import { createReadStream, createWriteStream } from 'node:fs';
import { dirname, join, resolve, basename } from 'node:path';
import { randomUUID } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { MediaType } from '../../oci/mediatypes.js';
import { tarDirectory } from '../../oci/tar.js';
import { pushImage, type PushImageResult } from '../../client/image.js';
import type { RegistryClient } from '../../client/registry-client.js';
import type { ProgressListener } from '../../client/progress.js';
import type { StoredBlob } from './blobs.js';

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

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes (or adds to) an OCI image layout directory; `refName` tags the manifest in index.json. */
export async function writeLayout(dir: string, image: ImageBlobs, refName: string | undefined): Promise<void> {
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  for (const b of [...image.blobs, image.manifest]) {
    const dest = join(blobDir, b.digest.hex);
    if (await stat(dest).catch(() => undefined)) continue;
    const tmp = join(blobDir, `.tmp-${randomUUID()}`);
    await copyFile(b.path, tmp);
    await fsyncPath(tmp);
    await rename(tmp, dest);
  }
  await writeJsonAtomic(join(dir, 'oci-layout'), { imageLayoutVersion: '1.0.0' });
  let index: { schemaVersion: number; mediaType: string; manifests: Array<Record<string, unknown>> } = {
    schemaVersion: 2,
    mediaType: MediaType.OciIndex,
    manifests: [],
  };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as typeof index;
  } catch {
    // a new layout
  }
  const entry: Record<string, unknown> = { mediaType: image.manifestMediaType, digest: image.manifest.digest.text, size: image.manifest.size };
  if (refName) entry.annotations = { 'org.opencontainers.image.ref.name': refName };
  index.manifests = index.manifests.filter((m) => {
    const name = (m.annotations as Record<string, string> | undefined)?.['org.opencontainers.image.ref.name'];
    return refName ? name !== refName : m.digest !== image.manifest.digest.text;
  });
  index.manifests.push(entry);
  await writeJsonAtomic(join(dir, 'index.json'), index);
  await fsyncPath(dir);
}

async function writeJsonAtomic(path: string, doc: unknown): Promise<void> {
  const tmp = `${path}.${randomUUID()}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(doc));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

/** Writes an `.oci.tar`: the layout, tarred in canonical order with owners 0:0 and mtimes 0. */
export async function writeLayoutArchive(file: string, image: ImageBlobs, refName: string | undefined): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const work = await mkdtemp(join(dirname(file), `.${basename(file)}-`));
  try {
    await writeLayout(join(work, 'layout'), image, refName);
    const tmp = join(work, 'out.tar');
    await pipeline(tarDirectory(join(work, 'layout'), { owner: { uid: 0, gid: 0 }, sourceDateEpoch: 0 }), createWriteStream(tmp));
    await fsyncPath(tmp);
    await rename(tmp, file);
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
