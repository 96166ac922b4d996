/**
 * Runtimes are images (ARCHITECTURE decision 2). A runtime named in a Kraftfile
 * (`base-compat:latest` → `<central>/official/base-compat:latest`) is either
 * - a Unikraft-layout image: an optional kernel layer (reused byte for byte in
 *   the app's image) and an initrd layer holding a base rootfs (EROFS or CPIO),
 *   unpacked here to lie under the app's rootfs; or
 * - a plain OCI image (e.g. a python runtime): its layers are the base rootfs.
 * Its Cmd/Env/Entrypoint feed the run-config merge (config.ts).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm, open } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { applyLayers, type ExtractLimits } from '../../oci/extract.js';
import { readTar } from '../../oci/tar.js';
import type { PulledImage } from '../exec/images.js';
import type { BlobDir, StoredBlob } from './blobs.js';
import { ANNOTATION_INITRD, ANNOTATION_KERNEL } from './config.js';
import { runTool } from './initrd.js';
import { layerSource } from '../exec/layers.js';
import { parseDigest } from '../../oci/digest.js';

export interface RuntimeInfo {
  kernelLayer?: StoredBlob;
  cmd?: string[];
  env?: string[];
  entrypoint?: string[];
}

interface LayerAnnotations {
  layers?: Array<{ digest: string; annotations?: Record<string, string> }>;
}

/** Reads the single file out of a single-file layer tar into `dest`. */
async function extractSingleFile(layerPath: string, dest: string, maxBytes: number): Promise<void> {
  for await (const { header, body } of readTar(createReadStream(layerPath) as AsyncIterable<Buffer>, {})) {
    if (header.type !== 'file') {
      for await (const _ of body) void _;
      continue;
    }
    if (header.size > maxBytes) throw new Error(`runtime initrd larger than ${maxBytes} bytes`);
    await pipeline(body, createWriteStream(dest, { mode: 0o600 }));
    return;
  }
  throw new Error('runtime layer holds no file');
}

/** Unpacks an EROFS or CPIO initrd into `dir` (which must be empty). */
export async function unpackInitrd(file: string, dir: string): Promise<void> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(1028);
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  await mkdir(dir, { recursive: true });
  if (head.subarray(0, 6).toString('latin1') === '070701') {
    // GNU cpio into an empty directory, names kept relative.
    await runTool('sh', ['-c', 'cd "$1" && cpio -idm --quiet --no-absolute-filenames < "$2"', 'unpack', dir, file]);
    return;
  }
  if (head.readUInt32LE(1024) === 0xe0f5e1e2) {
    await runTool('fsck.erofs', [`--extract=${dir}`, file]);
    return;
  }
  throw new Error('runtime initrd is neither CPIO newc nor EROFS');
}

export const DEFAULT_RUNTIME_INITRD_MAX_BYTES = 4 * 1024 ** 3;

/** What the runtime brings besides files: its kernel layer and run config. */
export function runtimeInfo(pulled: PulledImage): RuntimeInfo {
  const doc = JSON.parse(pulled.manifest.toString('utf8')) as LayerAnnotations;
  const cfg = (pulled.config.config ?? {}) as { Cmd?: string[]; Env?: string[]; Entrypoint?: string[] };
  const info: RuntimeInfo = {};
  if (cfg.Cmd) info.cmd = cfg.Cmd;
  if (cfg.Env) info.env = cfg.Env;
  if (cfg.Entrypoint) info.entrypoint = cfg.Entrypoint;
  for (const l of doc.layers ?? []) {
    const local = pulled.layers.find((p) => p.digest === l.digest);
    if (local && l.annotations?.[ANNOTATION_KERNEL]) info.kernelLayer = { digest: parseDigest(l.digest), size: local.size, path: local.path };
  }
  return info;
}

/** Lays the runtime's base rootfs into `dir`. */
export async function unpackRuntimeRootfs(pulled: PulledImage, dir: string, blobs: BlobDir, limits: Partial<ExtractLimits> = {}): Promise<void> {
  const doc = JSON.parse(pulled.manifest.toString('utf8')) as LayerAnnotations;
  const annotated = (doc.layers ?? []).some((l) => l.annotations?.[ANNOTATION_KERNEL] || l.annotations?.[ANNOTATION_INITRD]);
  await mkdir(dir, { recursive: true });
  if (!annotated) {
    await applyLayers(dir, pulled.layers.map((l) => layerSource(l.path, l.mediaType)), limits);
    return;
  }
  for (const l of doc.layers ?? []) {
    const local = pulled.layers.find((p) => p.digest === l.digest);
    if (!local || !l.annotations?.[ANNOTATION_INITRD]) continue;
    const tmp = await mkdtemp(join(blobs.root, 'initrd-'));
    try {
      await extractSingleFile(local.path, join(tmp, 'initrd'), limits.maxBytes ?? DEFAULT_RUNTIME_INITRD_MAX_BYTES);
      await unpackInitrd(join(tmp, 'initrd'), dir);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
