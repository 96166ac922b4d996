// Public face of src/builder/cache: step keys, state snapshots, packaged-image records.
export * from './cache.js';
export * from './copytree.js';
