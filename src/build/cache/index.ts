// Public face of src/build/cache: step keys, state snapshots, packaged-image records.
export * from './cache.js';
export * from './copytree.js';
