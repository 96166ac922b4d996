/**
 * Single-file layers of the Unikraft image layout: an uncompressed tar holding
 * one regular file (`unikraft/bin/kernel` or `unikraft/bin/initrd`), owner 0:0,
 * mtime 0, mode 0644, no directory entries, no user/group names. Because the tar
 * is uncompressed, the layer's digest is also its diff_id. The bytes are src/oci's
 * deterministic tar (tar.ts): the same file gives the same layer digest.
 */
import { stat } from 'node:fs/promises';
import { createTarStream } from '../../oci/index.js';
import type { BlobDir, StoredBlob } from './blobs.js';

export const KERNEL_PATH = 'unikraft/bin/kernel';
export const INITRD_PATH = 'unikraft/bin/initrd';

/** Writes a tar with the single entry `entryName` whose body is the file at `source` (src/oci's deterministic tar writer). */
export async function writeSingleFileLayer(source: string, entryName: string, blobs: BlobDir): Promise<StoredBlob> {
  const { size } = await stat(source);
  return blobs.putStream(createTarStream([{ type: 'file', name: entryName, size, source, mode: 0o644, uid: 0, gid: 0, mtime: 0 }]));
}
