// Public face of src/auth (full usage notes are added with the registry adapter).
export * from './errors.js';
export * from './names.js';
export * from './scope.js';
export * from './jwt.js';
export * from './accounts.js';
export { writeSecretFile, SECRET_FILE_MODE } from './secretfile.js';
export * from './policy.js';
export * from './ratelimit.js';
