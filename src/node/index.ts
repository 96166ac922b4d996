/**
 * Public face of src/node: `createNodeApi(options)` builds the node controller's
 * REST API v1 (instances, images, health) over an instance database, a runtime
 * driver, an image resolver and an image catalog. The daemon mounts `handler`
 * for every path under `/v1/` beside the registry's `/v2/`. The wiring itself
 * lives in compose.ts (the composition root); `ukcd node`'s process in server.ts.
 */
export {
  createNodeApi,
  DEFAULT_NODE_API_RATE_LIMIT,
  DEFAULT_NODE_API_LIMITS,
  type NodeApi,
  type NodeApiLimits,
  type NodeApiOptions,
  type NodeGatewayOptions,
} from './compose.js';
export { Errno, NodeError, httpStatusForErrno } from './errors.js';
export type { ApiRequest, ApiResponse } from '../api/index.js';
export {
  LOCAL_PRINCIPAL,
  singleTenantAuthenticator,
  tokenAuthenticator,
  localTokenVerifier,
  ControlPlaneTokenVerifier,
  DEFAULT_CONTROL_PLANE_TOKEN_CACHE,
  presentedToken,
  type Authenticator,
  type TokenVerifier,
  type ControlPlaneTokenVerifierOptions,
} from './auth.js';
export { QuotaGuard, userRoutes, userDirectoryFromAccounts, DEFAULT_USER_ROUTE_LIMITS, type UserDirectory, type QuotaUsage } from './users.js';
export { NOBODY } from '../api/index.js';
export type { Clock, TimerHandle } from './clock.js';
export { systemClock } from './clock.js';
export type * from './runtime/driver.js';
export type * from './images/resolver.js';
export type { CatalogImage, ImageCatalog } from './images/catalog.js';
export { imagePullCheck, imageNotFoundMessage, type ImagePullCheck, type RepositoryPullDecision } from './images/pull-access.js';
export type { InstanceRecord, InstanceState, RestartPolicy } from './instances/model.js';
export { StopReason, StopReasons, INSTANCE_STATES } from './instances/model.js';
export type { RecoveryReport, LifecycleLimits } from './instances/lifecycle.js';
export { restartDelayMs } from './instances/lifecycle.js';
export type { LifecycleChange } from './instances/lifecycle.js';
export { Gateway, GatewayListenError, parsePortMap, PortMapError, DEFAULT_GATEWAY_LIMITS, type GatewayLimits, type ListenAddress } from './gateway/index.js';
export { parsePortShorthand, parsePortShorthands, PortSpecError, type NormalizedService } from './services/index.js';
export type { NodeTlsMaterial } from './certificates/index.js';
// The defaults of every limit the node takes (src/config's settings table reads them).
export { DEFAULT_SERVICE_LIMITS, type ServiceLimits } from './services/index.js';
export { DEFAULT_CERTIFICATE_LIMITS, type CertificateLimits } from './certificates/index.js';
export { DEFAULT_MICRO_LIMITS, type MicroDriverLimits } from './runtime/micro.js';
export { DEFAULT_LOCAL_IMAGES_LIMITS, type LocalImagesLimits } from './images/local.js';
export { DEFAULT_NETNS_POOL_SIZE, DEFAULT_LEASE_LOG_MAX_LINES } from './network/index.js';
export { startNodeServer, tokenRegistryAccess } from './server.js';
export type { NodeAuthOption, NodeServer, NodeServerOptions } from './server.js';
export { DEFAULT_IMAGE_CACHE_BYTES } from './images/cache.js';
