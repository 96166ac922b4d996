// Public face of src/builder/package: Unikraft-layout packaging, outputs, import, runtimes.
export * from './blobs.js';
export * from './config.js';
export * from './image.js';
export * from './import.js';
export * from './initrd.js';
export * from './layer.js';
export * from './official.js';
export * from './output.js';
export * from './runtime.js';
