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
import { applyLayers, type ExtractLimits } from '../../oci/index.js';
import { extractCpio, type CpioExtractOptions } from '../../oci/index.js';
import { readTar } from '../../oci/index.js';
import type { PulledImage } from '../exec/images.js';
import type { BlobDir, StoredBlob } from './blobs.js';
import { ANNOTATION_INITRD, ANNOTATION_KERNEL } from './config.js';
import { runTool } from './initrd.js';
import { layerSource } from '../exec/layers.js';
import { parseDigest } from '../../oci/index.js';

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

/** Options for `unpackInitrd`: the confined extractor's limits and owner policy. */
export type InitrdUnpackOptions = CpioExtractOptions & {
  /** Longest an EROFS extraction may run, in ms. */
  erofsTimeoutMs?: number;
};

export const DEFAULT_EROFS_EXTRACT_TIMEOUT_MS = 600_000;

const CPIO_MAGICS = new Set(['070701', '070702']);

/**
 * Unpacks an EROFS or CPIO initrd (a runtime's, so untrusted) into `dir`.
 * CPIO (plain, gzip or zstd) goes through the confined extractor (no write
 * outside `dir`, not even through symlinks the archive made; bytes, entries and
 * depth capped). EROFS goes through `fsck.erofs --extract`, which has no such
 * guarantees of its own, so it runs in a bubblewrap sandbox whose only writable
 * path is `dir` and whose other paths are read-only system binds or bwrap's
 * empty tmpfs root: a symlink the image plants can only lead inside that view.
 */
export async function unpackInitrd(file: string, dir: string, options: InitrdUnpackOptions = {}): Promise<void> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(1028);
  try {
    await fh.read(head, 0, head.length, 0);
  } finally {
    await fh.close();
  }
  await mkdir(dir, { recursive: true });
  const { erofsTimeoutMs, ...cpioOptions } = options;
  const compressed = (head[0] === 0x1f && head[1] === 0x8b) || head.readUInt32LE(0) === 0xfd2fb528;
  if (CPIO_MAGICS.has(head.subarray(0, 6).toString('latin1')) || compressed) {
    await extractCpio(dir, createReadStream(file), cpioOptions);
    return;
  }
  if (head.readUInt32LE(1024) === 0xe0f5e1e2) {
    await extractErofsSandboxed(file, dir, erofsTimeoutMs ?? DEFAULT_EROFS_EXTRACT_TIMEOUT_MS);
    return;
  }
  throw new Error('runtime initrd is neither CPIO newc nor EROFS');
}

/** Runs `fsck.erofs --extract` seeing only `dir` (writable) and the image (read-only). */
async function extractErofsSandboxed(file: string, dir: string, timeoutMs: number): Promise<void> {
  const caps = ['CAP_CHOWN', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_DAC_OVERRIDE', 'CAP_MKNOD'];
  const root = process.getuid?.() === 0;
  await runTool(
    'bwrap',
    [
      '--unshare-all',
      '--die-with-parent',
      '--new-session',
      '--ro-bind', '/usr', '/usr',
      '--symlink', 'usr/lib', '/lib',
      '--symlink', 'usr/lib64', '/lib64',
      '--symlink', 'usr/bin', '/bin',
      '--symlink', 'usr/sbin', '/sbin',
      '--dev', '/dev',
      '--ro-bind', file, '/image',
      '--bind', dir, '/out',
      ...(root ? ['--cap-drop', 'ALL', ...caps.flatMap((c) => ['--cap-add', c])] : []),
      '--',
      'fsck.erofs',
      '--extract=/out',
      '/image',
    ],
    timeoutMs,
  );
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
      await unpackInitrd(join(tmp, 'initrd'), dir, limits);
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
}
