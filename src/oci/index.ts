// Public face of src/oci: digests, references, media types, manifests, layouts, archives.
export * from './digest.js';
export * from './mediatypes.js';
export * from './manifest.js';
