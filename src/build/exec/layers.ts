/**
 * Opening stored layer blobs for src/oci's applyLayers. Gzip layers are
 * decompressed here with a zlib stream and handed over as plain tar: with
 * oci's own gzip path, an extraction stopped by a limit (a decompression bomb)
 * never settled (seen with the oci branch of this date; reported). zstd and
 * plain layers go to oci's decoder as they are.
 */
import { createReadStream } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { LayerSource } from '../../oci/extract.js';
import { layerCompression, MediaType } from '../../oci/mediatypes.js';

export function layerSource(path: string, mediaType: string): LayerSource {
  if (layerCompression(mediaType) === 'gzip') {
    return {
      open: () => {
        const file = createReadStream(path);
        const gunzip = createGunzip();
        // Tear the file stream down with the decompressor, whichever side stops first.
        gunzip.on('close', () => file.destroy());
        return file.pipe(gunzip);
      },
      mediaType: MediaType.OciLayerTar,
    };
  }
  return { open: () => createReadStream(path), mediaType };
}
