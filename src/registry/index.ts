// Public face of src/registry: the OCI Distribution v1.1 server, its options, the authorisation hook and GC.
export { createRegistry, startRegistryServer, openStores, parseListen } from './server.js';
export type { Registry, RegistryServer, RegistryServerOptions, ListenAddress } from './server.js';
export type { RegistryOptions, RegistryLimits, RequestLogEntry } from './options.js';
export { DEFAULT_LIMITS } from './options.js';
export type { Authorizer, AccessRequest, Principal, RegistryAction } from './auth.js';
export { allowAnonymous, ANONYMOUS } from './auth.js';
export { ERROR_CODES, RegistryError, errorEnvelope, type ErrorCode } from './errors.js';
export { isRepositoryName, parseRepositoryName, isTag, REPOSITORY_NAME_MAX_LENGTH } from './names.js';
export { collectGarbage, DEFAULT_GC_GRACE_PERIOD_MS, type GcOptions, type GcReport } from './gc.js';
export { RegistryService } from './service.js';
export { registryCommand } from './command.js';
