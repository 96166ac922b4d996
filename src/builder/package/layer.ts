/**
 * Single-file layers of the Unikraft image layout: an uncompressed tar holding
 * one regular file (`unikraft/bin/kernel` or `unikraft/bin/initrd`), owner 0:0,
 * mtime 0, mode 0644, no directory entries, no user/group names. Because the tar
 * is uncompressed, the layer's digest is also its diff_id.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import type { BlobDir, StoredBlob } from './blobs.js';

export const KERNEL_PATH = 'unikraft/bin/kernel';
export const INITRD_PATH = 'unikraft/bin/initrd';

/** Writes a tar with the single entry `entryName` whose body is the file at `source`. */
export async function writeSingleFileLayer(source: string, entryName: string, blobs: BlobDir): Promise<StoredBlob> {
  const { size } = await stat(source);
  const pack = tarStream.pack();
  const out = new PassThrough();
  const stored = blobs.putStream(out);
  const piping = pipeline(pack, out);
  await new Promise<void>((resolve, reject) => {
    const entry = pack.entry(
      { name: entryName, size, mode: 0o644, uid: 0, gid: 0, uname: '', gname: '', mtime: new Date(0), type: 'file' },
      (err) => (err ? reject(err) : resolve()),
    );
    createReadStream(source).on('error', reject).pipe(entry);
  });
  pack.finalize();
  await piping;
  return stored;
}
