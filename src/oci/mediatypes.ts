/** Media types of the OCI image spec and Docker's schema 2, and what each one is. */

export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  OciLayoutHeader: 'application/vnd.oci.layout.header.v1+json',
  OciEmpty: 'application/vnd.oci.empty.v1+json',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerConfig: 'application/vnd.docker.container.image.v1+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
} as const;

export type KnownMediaType = (typeof MediaType)[keyof typeof MediaType];

/** Media types of single-platform image manifests. */
export const IMAGE_MANIFEST_TYPES: ReadonlySet<string> = new Set([MediaType.OciManifest, MediaType.DockerManifest]);

/** Media types of indexes / manifest lists. */
export const INDEX_TYPES: ReadonlySet<string> = new Set([MediaType.OciIndex, MediaType.DockerManifestList]);

/** Every manifest media type a registry accepts on `PUT /v2/<name>/manifests/<ref>`. */
export const MANIFEST_TYPES: ReadonlySet<string> = new Set([...IMAGE_MANIFEST_TYPES, ...INDEX_TYPES]);

export function isManifestMediaType(mediaType: string): boolean {
  return MANIFEST_TYPES.has(mediaType);
}

export function isIndexMediaType(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/** How a layer's bytes are compressed, judged by its media type. */
export function layerCompression(mediaType: string): 'none' | 'gzip' | 'zstd' | undefined {
  if (mediaType === MediaType.OciLayerTar || mediaType === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  if (
    mediaType === MediaType.OciLayerGzip ||
    mediaType === MediaType.DockerLayerGzip ||
    mediaType === MediaType.DockerForeignLayerGzip
  ) {
    return 'gzip';
  }
  if (mediaType === MediaType.OciLayerZstd) return 'zstd';
  return undefined;
}
