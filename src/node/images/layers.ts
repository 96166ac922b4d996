/**
 * The layers of a Unikraft-layout image as the node reads them: one file each,
 * `unikraft/bin/kernel` and `unikraft/bin/initrd`, in a tar that may be
 * uncompressed, gzip or zstd (registries, mirrors and copy tools such as
 * skopeo re-encode layers; the media type says which, OCI's or Docker's).
 *
 * Invariants:
 *  - A layer is read as one stream: blob → digest check → decompression
 *    (src/oci/extract.ts `decompressStream`, the project's one decoder) →
 *    tar reader. Memory holds a chunk, never a layer; decompressed bytes are
 *    capped (`maxBytes`) so a bomb fails at the cap, and zstd frames whose
 *    window exceeds the decoder's limit are refused before any allocation.
 *  - The whole blob is read and its digest checked before a reader reports
 *    success, so nothing derived from damaged bytes is ever marked ready.
 *  - Every refusal is a `NodeError` that names the layer by its short digest
 *    and says why: ENOTSUP for a media type the node cannot read or a zstd
 *    window above the limit, EINVAL for a corrupt or truncated stream or a
 *    layer that is not a Unikraft kernel / initrd layer, EFBIG past the cap.
 */
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Digester, parseDigest } from '../../oci/index.js';
import { ExtractLimitError, decompressStream, type Compression } from '../../oci/index.js';
import { layerCompression } from '../../oci/index.js';
import { TarFormatError, readTar } from '../../oci/index.js';
import { BlobNotFoundError } from '../../store/index.js';
import type { BlobStore } from '../../store/index.js';
import type { Descriptor } from '../../client/index.js';
import { Errno, NodeError } from '../errors.js';

/** Path of the initrd inside the single-file initrd layer (Unikraft layout). */
export const INITRD_ENTRY = 'unikraft/bin/initrd';
export const KERNEL_ENTRY = 'unikraft/bin/kernel';
/** Layer annotations Unikraft's tools write (build-and-image.md). */
export const INITRD_ANNOTATION = 'org.unikraft.kernel.initrd';
export const KERNEL_ANNOTATION = 'org.unikraft.kernel.image';

/** `sha256:0123456789ab`: enough to name a layer in a message. */
export function shortDigest(digest: string): string {
  const colon = digest.indexOf(':');
  return colon < 0 ? digest.slice(0, 19) : digest.slice(0, colon + 13);
}

export function layerError(layer: Pick<Descriptor, 'digest'>, errno: number, reason: string): NodeError {
  return new NodeError(errno, `layer ${shortDigest(layer.digest)}: ${reason}`);
}

/** The compression of a layer, from its media type; ENOTSUP for one the node cannot read. */
export function compressionOf(layer: Descriptor): Compression {
  const c = layerCompression(layer.mediaType);
  if (c === undefined) {
    const shown = JSON.stringify(layer.mediaType.slice(0, 200));
    throw layerError(layer, Errno.EOPNOTSUPP, `media type ${shown} is not supported (uncompressed, gzip or zstd tar layers only)`);
  }
  return c;
}

export interface UnikraftLayers {
  initrd: Descriptor;
  /** Every other layer (the kernel's, in Unikraft's layout). */
  others: Descriptor[];
}

/**
 * Which layer is the initrd: the one annotated `org.unikraft.kernel.initrd`, else the
 * last (Unikraft's tools write kernel then initrd). Every layer's media type is checked
 * here, before any byte is read.
 */
export function unikraftLayers(layers: readonly Descriptor[]): UnikraftLayers {
  if (layers.length === 0) throw new NodeError(Errno.EINVAL, 'image has no rootfs layer');
  for (const l of layers) compressionOf(l);
  const annotated = layers.filter((l) => l.annotations?.[INITRD_ANNOTATION] !== undefined);
  if (annotated.length > 1) throw new NodeError(Errno.EINVAL, `image has ${annotated.length} layers annotated as the initrd`);
  const initrd = annotated[0] ?? (layers[layers.length - 1] as Descriptor);
  return { initrd, others: layers.filter((l) => l !== initrd) };
}

export interface ReadLayerOptions {
  /** Decompressed bytes allowed (the tar stream: headers, padding and files). */
  maxBytes: number;
  /** Where to write `unikraft/bin/initrd` (created, mode 0600); without it the entry is only read. */
  initrdOut?: string;
}

export interface LayerContents {
  initrd: boolean;
  kernel: boolean;
  /** Decompressed tar bytes read. */
  bytes: number;
}

function printable(name: string): string {
  return JSON.stringify(name.length > 120 ? `${name.slice(0, 120)}…` : name);
}

function diskError(layer: Descriptor, err: unknown): NodeError | undefined {
  const code = (err as { code?: unknown }).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return layerError(layer, Errno.ENOSPC, 'not enough disk space on the node to unpack it');
  return undefined;
}

/**
 * Streams a Unikraft layer: checks its media type, verifies its digest, decompresses it
 * (capped), and reads its tar, which may hold only `unikraft/bin/kernel`,
 * `unikraft/bin/initrd` and their parent directories. With `initrdOut`, the initrd is
 * written there; on any failure the caller removes that file.
 */
export async function readUnikraftLayer(blobs: BlobStore, layer: Descriptor, options: ReadLayerOptions): Promise<LayerContents> {
  const compression = compressionOf(layer);
  const digest = parseDigest(layer.digest);
  let raw: Readable;
  try {
    raw = await blobs.open(digest);
  } catch (err) {
    if (err instanceof BlobNotFoundError) throw layerError(layer, Errno.ENOENT, "its blob is not in the node's registry");
    throw err;
  }
  const digester = new Digester(digest.algorithm);
  const hashed = (async function* (): AsyncGenerator<Buffer> {
    for await (const chunk of raw as AsyncIterable<Buffer>) {
      digester.update(chunk);
      yield chunk;
    }
  })();
  const decoded = decompressStream(hashed, compression);
  const out: LayerContents = { initrd: false, kernel: false, bytes: 0 };
  const label = compression === 'none' ? 'tar' : `${compression} stream`;
  // One pull function for the tar reader and the final drain, so the cap and the
  // error wording are the same wherever the stream fails.
  const pull = async (): Promise<IteratorResult<Buffer>> => {
    let r: IteratorResult<Buffer>;
    try {
      r = await decoded.next();
    } catch (err) {
      if (err instanceof NodeError) throw err;
      if (err instanceof ExtractLimitError) throw layerError(layer, Errno.EOPNOTSUPP, err.message);
      const why = err instanceof Error ? err.message : String(err);
      throw layerError(layer, Errno.EINVAL, `the ${label} is corrupt or truncated (${why})`);
    }
    if (!r.done) {
      out.bytes += r.value.length;
      if (out.bytes > options.maxBytes) {
        throw layerError(layer, Errno.EFBIG, `decompresses to more than ${options.maxBytes} bytes (the node's limit)`);
      }
    }
    return r;
  };
  // The tar reader stops at the end-of-archive block; its `return` must not end the
  // decoder, because the rest of the blob is still read for the digest check.
  const view: AsyncIterable<Buffer> = {
    [Symbol.asyncIterator]: () => ({ next: pull, return: async () => ({ done: true, value: undefined }) }),
  };
  try {
    try {
      for await (const entry of readTar(view)) {
        const name = entry.header.name.replace(/^(\.?\/)+/, '');
        const type = entry.header.type;
        if (type === 'directory' && ['', '.', 'unikraft', 'unikraft/bin'].includes(name)) continue;
        if (type === 'file' && name === INITRD_ENTRY && !out.initrd) {
          out.initrd = true;
          if (options.initrdOut !== undefined) {
            await pipeline(Readable.from(entry.body), createWriteStream(options.initrdOut, { mode: 0o600, flags: 'wx' }));
            continue;
          }
        } else if (type === 'file' && name === KERNEL_ENTRY && !out.kernel) {
          out.kernel = true;
        } else {
          throw layerError(layer, Errno.EINVAL, `is not a Unikraft kernel or initrd layer (it holds ${type} ${printable(name)})`);
        }
        for await (const _ of entry.body) void _;
      }
      while (!(await pull()).done) {
        // Trailing bytes after the archive's end still count and are hashed.
      }
    } catch (err) {
      if (err instanceof NodeError) throw err;
      if (err instanceof TarFormatError) throw layerError(layer, Errno.EINVAL, `is not a valid tar archive (${err.message})`);
      throw diskError(layer, err) ?? err;
    }
  } finally {
    await decoded.return(undefined).catch(() => undefined);
    raw.destroy();
  }
  const got = digester.digest();
  if (got.hex !== digest.hex || digester.size !== layer.size) {
    throw layerError(layer, Errno.EIO, `its stored bytes do not match its digest and size (the node's store is damaged)`);
  }
  return out;
}
