// Public face of src/store: blob and metadata storage contracts and their drivers.
export type * from './types.js';
export * from './errors.js';
export { FsBlobStore, type FsBlobStoreOptions } from './fs.js';
export { MemoryBlobStore } from './memory.js';
export { SqliteMetadataStore, SCHEMA_VERSION, type SqliteMetadataStoreOptions } from './sqlite.js';
export { KeyedMutex } from './mutex.js';
