/**
 * Opening stored layer blobs for src/oci's applyLayers: the blob file as stored
 * (gzip, zstd or plain); oci's extractor detects and decodes it, and destroys
 * the file stream when a limit or a hostile entry stops the extraction.
 */
import { createReadStream } from 'node:fs';
import type { LayerSource } from '../../oci/index.js';

export function layerSource(path: string, mediaType: string): LayerSource {
  return { open: () => createReadStream(path), mediaType };
}
