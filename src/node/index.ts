/**
 * Public face of src/node: `createNodeApi(options)` builds the node controller's
 * REST API v1 (instances, images, health) over an instance database, a runtime
 * driver, an image resolver and an image catalog. The daemon mounts `handler`
 * for every path under `/v1/` beside the registry's `/v2/`.
 *
 * Startup runs recovery (see instances/lifecycle.ts) before the promise
 * resolves, so the first request already sees re-adopted instances.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRouter, type ApiRequest, type ApiResponse } from './api/router.js';
import { allowAllPolicy, singleTenantAuthenticator, type AccessPolicy, type Authenticator, type Principal } from './auth.js';
import { systemClock, type Clock } from './clock.js';
import type { ImageResolver } from './images/resolver.js';
import { ImageQueries, type ImageCatalog } from './images/catalog.js';
import { imageRoutes } from './images/routes.js';
import type { RuntimeDriver } from './runtime/driver.js';
import { InstanceStore } from './instances/store.js';
import { LogRing } from './instances/logs.js';
import { DEFAULT_LIFECYCLE_LIMITS, InstanceLifecycle, type LifecycleLimits, type RecoveryReport } from './instances/lifecycle.js';
import { DEFAULT_INSTANCE_LIMITS, type Capabilities } from './instances/create.js';
import { InstanceService } from './instances/service.js';
import { DEFAULT_ROUTE_LIMITS, healthRoute, instanceRoutes, type InstanceRouteLimits } from './instances/routes.js';

export interface NodeApiLimits extends InstanceRouteLimits, LifecycleLimits {
  /** Largest request body (413 above). */
  maxBodyBytes: number;
  /** Console bytes kept per instance (ring file). */
  logCapacityBytes: number;
  /** Filters accepted by `GET /v1/images/list`. */
  maxImageFilters: number;
}

export const DEFAULT_NODE_API_LIMITS: NodeApiLimits = {
  ...DEFAULT_INSTANCE_LIMITS,
  ...DEFAULT_ROUTE_LIMITS,
  ...DEFAULT_LIFECYCLE_LIMITS,
  maxBodyBytes: 1024 * 1024,
  logCapacityBytes: 1024 * 1024,
  maxImageFilters: 100,
};

export interface NodeApiOptions {
  /** Directory for the instance database (`instances.db`) and logs (`logs/`). */
  dataDir: string;
  runtime: RuntimeDriver;
  images: ImageResolver;
  catalog: ImageCatalog;
  clock?: Clock;
  limits?: Partial<NodeApiLimits>;
  authenticate?: Authenticator;
  policy?: AccessPolicy;
  /** Features refused with EOPNOTSUPP until the gateway / volumes exist. */
  capabilities?: Partial<Capabilities>;
  /** The principal used to re-resolve images for restarts after recovery. */
  principalForOwner?: (owner: string) => Principal;
}

export interface NodeApi {
  /** node:http listener for every path under `/v1/`. */
  handler(req: IncomingMessage, res: ServerResponse): void;
  /** The same API in-process (tests, embedding). */
  handle(req: ApiRequest): Promise<ApiResponse>;
  /** What recovery did at startup. */
  recovery: RecoveryReport;
  /** Detaches from running instances (they stay up for re-adoption) and closes the database. */
  close(): Promise<void>;
}

export async function createNodeApi(options: NodeApiOptions): Promise<NodeApi> {
  const limits: NodeApiLimits = { ...DEFAULT_NODE_API_LIMITS, ...options.limits };
  const clock = options.clock ?? systemClock;
  const policy = options.policy ?? allowAllPolicy;
  mkdirSync(options.dataDir, { recursive: true });
  const store = new InstanceStore(join(options.dataDir, 'instances.db'));
  const logs = new LogRing(join(options.dataDir, 'logs'), limits.logCapacityBytes);
  const lifecycle = new InstanceLifecycle({ store, driver: options.runtime, resolver: options.images, clock, logs, limits });
  const capabilities: Capabilities = { serviceGroups: false, volumes: false, ...options.capabilities };
  const service = new InstanceService({ store, lifecycle, resolver: options.images, policy, clock, logs, limits, capabilities });
  const principalFor = options.principalForOwner ?? ((owner: string): Principal => ({ account: owner, root: false }));
  let recovery: RecoveryReport;
  try {
    recovery = await lifecycle.recover(principalFor);
  } catch (err) {
    await lifecycle.close();
    store.close();
    throw err;
  }
  const router = createRouter({
    routes: [
      ...instanceRoutes(service, limits),
      ...imageRoutes(new ImageQueries(options.catalog, policy), limits.maxImageFilters),
      healthRoute(() => store.list(undefined).length),
    ],
    authenticate: options.authenticate ?? singleTenantAuthenticator,
    policy,
    maxBodyBytes: limits.maxBodyBytes,
  });
  let closed = false;
  return {
    handler: router.listener,
    handle: router.handle,
    recovery,
    async close() {
      if (closed) return;
      closed = true;
      await lifecycle.close();
      store.close();
    },
  };
}

export { Errno, NodeError, httpStatusForErrno } from './errors.js';
export type { ApiRequest, ApiResponse } from './api/router.js';
export type { Principal, AccessPolicy, Authenticator, Action, ObjectKind, ObjectRef } from './auth.js';
export { LOCAL_PRINCIPAL, ownerOnlyPolicy, allowAllPolicy, singleTenantAuthenticator } from './auth.js';
export { nodeAuthFromAccounts, type NodeAccountsAuth } from './accounts-auth.js';
export type { Clock, TimerHandle } from './clock.js';
export { systemClock } from './clock.js';
export type * from './runtime/driver.js';
export type * from './images/resolver.js';
export type { CatalogImage, ImageCatalog } from './images/catalog.js';
export type { InstanceRecord, InstanceState, RestartPolicy } from './instances/model.js';
export { StopReason, StopReasons, INSTANCE_STATES } from './instances/model.js';
export type { RecoveryReport, LifecycleLimits } from './instances/lifecycle.js';
export { restartDelayMs } from './instances/lifecycle.js';
