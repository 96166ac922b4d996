// Public face of src/util: small helpers without domain knowledge that every area may use
// (command-line plumbing, usage text, durable writes, listeners, the version string).
export * from './command.js';
export * from './usage.js';
export * from './durable.js';
export * from './listener.js';
export * from './version.js';
export * from './hooks.js';
export * from './config-options.js';
export * from './storage.js';
export * from './remove-tree.js';
