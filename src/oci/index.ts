// Public face of src/oci: digests, references, media types, manifests, layouts, archives.
export * from './digest.js';
export * from './mediatypes.js';
export * from './manifest.js';
export * from './reference.js';
export * from './tree.js';
export * from './tar.js';
export * from './cpio.js';
export * from './cpio-read.js';
export * from './extract.js';
export * from './layout.js';
