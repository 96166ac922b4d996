/**
 * Packages a finished root filesystem as a Unikraft-layout OCI image: the
 * runtime's kernel layer (kept byte for byte) when there is one, then the
 * rootfs as an initrd layer; a config and a manifest written deterministically.
 * Everything lands in a BlobDir; outputs (registry, layout dir, .oci.tar) copy
 * from there.
 */
import { copyFile, rm } from 'node:fs/promises';
import type { BlobDir, StoredBlob } from './blobs.js';
import { renderConfig, renderManifest, type RunConfig, type UnikraftImageInput } from './config.js';
import { makeInitrd, type RootfsFormat } from './initrd.js';
import { INITRD_PATH, writeSingleFileLayer } from './layer.js';
import { MediaType } from '../../oci/index.js';

export interface PackageOptions {
  rootfsDir: string;
  format: RootfsFormat;
  epoch: number;
  name: string;
  refName?: string;
  run: RunConfig;
  /** The runtime's kernel layer blob, reused as-is. */
  kernelLayer?: StoredBlob;
  blobs: BlobDir;
  warn?: (message: string) => void;
}

export interface PackagedImage {
  manifest: StoredBlob;
  manifestMediaType: string;
  config: StoredBlob;
  layers: StoredBlob[];
  /** The raw initrd file's digest (handy for logs and the node's cache). */
  initrd: StoredBlob;
}

export async function packageImage(opts: PackageOptions): Promise<PackagedImage> {
  const initrdTmp = await opts.blobs.tempPath();
  try {
    await makeInitrd(opts.rootfsDir, initrdTmp, { format: opts.format, epoch: opts.epoch, ...(opts.warn ? { warn: opts.warn } : {}) });
    const initrdLayer = await writeSingleFileLayer(initrdTmp, INITRD_PATH, opts.blobs);
    const initrd = await opts.blobs.putFile(initrdTmp);
    return await assembleImage(opts, initrdLayer, initrd);
  } finally {
    await rm(initrdTmp, { force: true });
  }
}

/**
 * Packages an initrd that already exists (an EROFS image given as the rootfs),
 * byte for byte: the file is copied into the store, never moved or changed.
 */
export async function packagePrebuiltInitrd(
  initrdFile: string,
  opts: Pick<PackageOptions, 'epoch' | 'name' | 'refName' | 'run' | 'kernelLayer' | 'blobs'>,
): Promise<PackagedImage> {
  const initrdTmp = await opts.blobs.tempPath();
  try {
    await copyFile(initrdFile, initrdTmp);
    const initrdLayer = await writeSingleFileLayer(initrdTmp, INITRD_PATH, opts.blobs);
    const initrd = await opts.blobs.putFile(initrdTmp);
    return await assembleImage(opts, initrdLayer, initrd);
  } finally {
    await rm(initrdTmp, { force: true });
  }
}

/** Writes config + manifest over already stored layers. */
export async function assembleImage(
  opts: Pick<PackageOptions, 'epoch' | 'name' | 'refName' | 'run' | 'kernelLayer' | 'blobs'>,
  initrdLayer: StoredBlob,
  initrd: StoredBlob,
): Promise<PackagedImage> {
  const input: UnikraftImageInput = {
    run: opts.run,
    initrd: initrdLayer,
    epoch: opts.epoch,
    name: opts.name,
    ...(opts.kernelLayer ? { kernel: opts.kernelLayer } : {}),
    ...(opts.refName ? { refName: opts.refName } : {}),
  };
  const config = await opts.blobs.putBytes(renderConfig(input));
  const manifest = await opts.blobs.putBytes(renderManifest(input, config));
  const layers = opts.kernelLayer ? [opts.kernelLayer, initrdLayer] : [initrdLayer];
  return { manifest, manifestMediaType: MediaType.OciManifest, config, layers, initrd };
}
