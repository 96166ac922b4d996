// Public face of src/store: blob and metadata storage contracts and their drivers.
export type * from './types.js';
