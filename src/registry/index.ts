// Public face of src/registry: the OCI Distribution v1.1 server, its options, the authorisation hooks
// (and `createRegistryAuth`, which plugs accounts and tokens into them) and GC.
export { createRegistry, startRegistryServer, openStores, parseListen, TOKEN_PATH } from './server.js';
export type { Registry, RegistryServer, RegistryServerOptions, ListenAddress } from './server.js';
export type { RegistryOptions, RegistryLimits, RequestLogEntry } from './options.js';
export { DEFAULT_LIMITS } from './options.js';
export type { Authorizer, AccessRequest, Principal, RegistryAction, RegistryAccessControl } from './auth.js';
export { allowAnonymous, ANONYMOUS, mountByAuthorizer } from './auth.js';
export {
  createRegistryAuth,
  DEFAULT_REGISTRY_SERVICE,
  DEFAULT_TOKEN_ISSUER,
  ACCOUNTS_DB_FILE,
  ROOT_TOKEN_FILE,
  SIGNING_KEY_FILE,
  DEFAULT_REGISTRY_REQUEST_RATE,
  type RegistryAuth,
  type RegistryAuthOptions,
} from './token-auth.js';
export { ERROR_CODES, RegistryError, errorEnvelope, type ErrorCode } from './errors.js';
export { isRepositoryName, parseRepositoryName, isTag, REPOSITORY_NAME_MAX_LENGTH } from './names.js';
export { collectGarbage, DEFAULT_GC_GRACE_PERIOD_MS, type GcOptions, type GcReport } from './gc.js';
export { RegistryService } from './service.js';
export { registryCommand, registryCommandWith, REGISTRY_HELP, type RegistryRoleSettings } from './command.js';
