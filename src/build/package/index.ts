// Public face of src/build/package: Unikraft-layout packaging of a root filesystem.
export * from './blobs.js';
export * from './config.js';
export * from './image.js';
export * from './initrd.js';
export * from './layer.js';
