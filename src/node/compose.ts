/**
 * The node controller's composition root: `createNodeApi(options)` wires the
 * instance database, the lifecycle (with recovery), the instance, image, user,
 * service-group and certificate routes, and (with `gateway` options) the
 * gateway, into one v1 router. src/node/index.ts is the public face and
 * re-exports what is public here; `ukcd node`'s process (registry + API + runtime)
 * is composed in server.ts.
 *
 * Startup runs recovery (see instances/lifecycle.ts) before the promise
 * resolves, so the first request already sees re-adopted instances.
 *
 * With `gateway` options the node also serves `/v1/services` and
 * `/v1/certificates` and runs the gateway (see gateway/gateway.ts) on the
 * public ports; without them service groups are refused with EOPNOTSUPP.
 */
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createRouter, type ApiLogger, type ApiRequest, type ApiResponse } from '../api/index.js';
import { accountPrincipal, Policy, type AccountPrincipal } from '../auth/index.js';
import { singleTenantAuthenticator, type Authenticator } from './auth.js';
import { systemClock, type Clock } from './clock.js';
import type { ImageResolver } from './images/resolver.js';
import type { ImagePullCheck } from './images/pull-access.js';
import { ImageQueries, type ImageCatalog } from './images/catalog.js';
import { imageRoutes } from './images/routes.js';
import type { RuntimeDriver } from './runtime/driver.js';
import { InstanceStore } from './instances/store.js';
import { LogRing } from './instances/logs.js';
import { DEFAULT_LIFECYCLE_LIMITS, InstanceLifecycle, type LifecycleChange, type LifecycleLimits, type RecoveryReport } from './instances/lifecycle.js';
import { DEFAULT_INSTANCE_LIMITS, type Capabilities } from './instances/create.js';
import { InstanceService, type ServiceGroupAttachment } from './instances/service.js';
import type { Route } from '../api/index.js';
import { Errno, NodeError } from './errors.js';
import { DEFAULT_SERVICE_LIMITS, ServiceGroupService, ServiceGroupStore, serviceRoutes, type ServiceLimits } from './services/index.js';
import { CertificateService, CertificateStore, DEFAULT_CERTIFICATE_LIMITS, certificateRoutes, ensureNodeTls, type CertificateLimits, type CertificateRecord, type NodeTlsMaterial } from './certificates/index.js';
import { CertificateDirectory, DEFAULT_GATEWAY_LIMITS, Gateway, GatewayListenError, NodeGatewayBackend, groupOf, type GatewayLimits, type GatewayObserver, type ListenAddress } from './gateway/index.js';
import { DEFAULT_ROUTE_LIMITS, healthRoute, instanceRoutes, type InstanceRouteLimits } from './instances/routes.js';
import { RequestRateLimiter, type RequestRateLimitOptions } from '../auth/index.js';
import { QuotaGuard, userRoutes, type UserDirectory } from './users.js';
import { unsupportedRoutes } from './unsupported.js';

/**
 * Requests per second per account on the node API. Generous: the CLI's waits and the
 * e2e tests' polling (20/s) stay far below it; a runaway script does not.
 */
export const DEFAULT_NODE_API_RATE_LIMIT: Readonly<Required<Pick<RequestRateLimitOptions, 'ratePerSecond' | 'burst'>>> = Object.freeze({
  ratePerSecond: 100,
  burst: 200,
});

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
  policy?: Policy;
  /** Internal errors of the v1 API are logged here (default: JSON lines on stderr). */
  logger?: ApiLogger;
  /** Features refused with EOPNOTSUPP until the gateway / volumes exist. */
  capabilities?: Partial<Capabilities>;
  /** The principal used to re-resolve images for restarts after recovery. */
  principalForOwner?: (owner: string) => AccountPrincipal;
  /** Runs the gateway and enables service groups and certificates. */
  gateway?: NodeGatewayOptions;
  /** Per-account request rate (429 + Retry-After); default DEFAULT_NODE_API_RATE_LIMIT; `false`: none. */
  rateLimit?: RequestRateLimitOptions | false;
  /** Where `POST /v1/users` creates accounts (absent: EOPNOTSUPP, accounts live elsewhere). */
  users?: UserDirectory;
  /** Checked at instance create before the image is resolved (see images/pull-access.ts); absent: every image. */
  mayPullImage?: ImagePullCheck;
}

export interface NodeGatewayOptions {
  /** Public FQDNs are `<group>.<metro>.<domain>`. Defaults: `local`, `localhost`. */
  metro?: string;
  domain?: string;
  /** Where public port `p` is served (`--port-map`). Default: all interfaces, port `p`. */
  listenAddress?: (publicPort: number) => ListenAddress;
  /** Ports opened at start even before a group uses them (`ukcd node`: 80 and 443). */
  alwaysOpen?: readonly number[];
  /** Directory of the generated CA and wildcard certificate (default `<dataDir>/tls`). */
  tlsDir?: string;
  limits?: Partial<GatewayLimits & ServiceLimits & CertificateLimits>;
  log?: (message: string) => void;
  /**
   * The instance whose network lease holds an address (the node network's `ownerOf`): the
   * gateway routes to a member's address only when it is leased to that very member. Absent
   * (tests over fake drivers): the record's address is trusted.
   */
  addressOwner?: (ip: string) => string | undefined;
  /** Gateway requests and wakes, for metrics. */
  observer?: GatewayObserver;
}

export interface NodeApi {
  /** node:http listener for every path under `/v1/`. */
  handler(req: IncomingMessage, res: ServerResponse): void;
  /** The same API in-process (tests, embedding). */
  handle(req: ApiRequest): Promise<ApiResponse>;
  /** What recovery did at startup. */
  recovery: RecoveryReport;
  /** The running gateway, when configured. */
  gateway?: Gateway;
  /** The node's generated CA and wildcard certificate, when the gateway runs. */
  tls?: NodeTlsMaterial;
  /** Every instance's state now (metrics). */
  instanceStates(): string[];
  /** Images (`repository@digest`) of live and standby instances: the image cache never evicts them. */
  imagesInUse(): Set<string>;
  /** Calls `fn` after every stored instance change (metrics: boot and network times). */
  watch(fn: (change: LifecycleChange) => void): () => void;
  /** Detaches from running instances (they stay up for re-adoption) and closes the database. */
  close(): Promise<void>;
}

export async function createNodeApi(options: NodeApiOptions): Promise<NodeApi> {
  const limits: NodeApiLimits = { ...DEFAULT_NODE_API_LIMITS, ...options.limits };
  const clock = options.clock ?? systemClock;
  const policy = options.policy ?? new Policy();
  mkdirSync(options.dataDir, { recursive: true });
  const store = new InstanceStore(join(options.dataDir, 'instances.db'));
  const logs = new LogRing(join(options.dataDir, 'logs'), limits.logCapacityBytes);
  let gateway: Gateway | undefined;
  const lifecycle = new InstanceLifecycle({
    store,
    driver: options.runtime,
    resolver: options.images,
    clock,
    logs,
    limits,
    drainer: (uuid, ms) => (gateway ? gateway.drain(uuid, ms) : Promise.resolve()),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  const principalFor = options.principalForOwner ?? ((owner: string): AccountPrincipal => accountPrincipal(owner));
  const quotaSources: { services?: () => readonly { owner: string }[] } = {};
  const quotas = new QuotaGuard({ instances: () => store.list(), services: () => quotaSources.services?.() ?? [] });
  const parts = options.gateway ? await gatewayParts(options.gateway, options.dataDir, store, lifecycle, policy, clock, principalFor, quotas) : undefined;
  if (parts) quotaSources.services = parts.groups;
  const capabilities: Capabilities = { serviceGroups: parts !== undefined, volumes: false, ...options.capabilities };
  const service = new InstanceService({
    store,
    lifecycle,
    resolver: options.images,
    policy,
    clock,
    logs,
    limits,
    capabilities,
    quotas,
    ...(parts ? { groups: parts.attachment } : {}),
    ...(options.mayPullImage ? { mayPullImage: options.mayPullImage } : {}),
    ...(parts ? { traffic: (uuid: string) => parts.gateway.load(uuid) } : {}),
  });
  let recovery: RecoveryReport;
  try {
    recovery = await lifecycle.recover(principalFor);
    if (parts) {
      gateway = parts.gateway;
      await parts.gateway.start();
    }
  } catch (err) {
    await parts?.close();
    await lifecycle.close();
    store.close();
    throw err;
  }
  const router = createRouter({
    routes: [
      ...instanceRoutes(service, limits),
      ...imageRoutes(new ImageQueries(options.catalog, policy), limits.maxImageFilters),
      ...(parts?.routes(limits.maxBatchItems) ?? []),
      ...userRoutes({ guard: quotas, bounds: limits, ...(options.users ? { directory: options.users } : {}), limits: { maxBatchItems: limits.maxBatchItems } }),
      // Health checks (heartbeats, load balancers) carry no token.
      { ...healthRoute(() => store.list(undefined).length), anonymous: true },
      // Last: a served route of the same method and path wins over its not-supported entry.
      ...unsupportedRoutes(),
    ],
    authenticate: options.authenticate ?? singleTenantAuthenticator,
    ...(options.logger ? { logger: options.logger } : {}),
    maxBodyBytes: limits.maxBodyBytes,
    ...(options.rateLimit === false ? {} : { rateLimiter: new RequestRateLimiter({ ...DEFAULT_NODE_API_RATE_LIMIT, ...options.rateLimit }) }),
  });
  let closed = false;
  return {
    handler: router.listener,
    handle: router.handle,
    recovery,
    instanceStates: () => store.list(undefined).map((r) => r.state),
    imagesInUse: () => new Set(store.list(undefined).filter((r) => r.state !== 'stopped').map((r) => r.image)),
    watch: (fn) => lifecycle.watch(fn),
    ...(parts ? { gateway: parts.gateway, tls: parts.tls } : {}),
    async close() {
      if (closed) return;
      closed = true;
      await parts?.close();
      await lifecycle.close();
      store.close();
    },
  };
}

interface GatewayParts {
  /** Every service group (quota counting). */
  groups(): readonly { owner: string }[];
  gateway: Gateway;
  tls: NodeTlsMaterial;
  attachment: ServiceGroupAttachment;
  routes(maxBatchItems: number): Route[];
  close(): Promise<void>;
}

/** Service groups, certificates and the gateway over the node's lifecycle. */
async function gatewayParts(
  opts: NodeGatewayOptions,
  dataDir: string,
  instances: InstanceStore,
  lifecycle: InstanceLifecycle,
  policy: Policy,
  clock: Clock,
  principalFor: (owner: string) => AccountPrincipal,
  quotas: QuotaGuard,
): Promise<GatewayParts> {
  const metro = opts.metro ?? 'local';
  const domain = opts.domain ?? 'localhost';
  const serviceLimits: ServiceLimits = { ...DEFAULT_SERVICE_LIMITS, ...opts.limits };
  const certLimits: CertificateLimits = { ...DEFAULT_CERTIFICATE_LIMITS, ...opts.limits };
  const tls = await ensureNodeTls({ dir: opts.tlsDir ?? join(dataDir, 'tls'), zone: `${metro}.${domain}` });
  const groupStore = new ServiceGroupStore(join(dataDir, 'services.db'));
  const certStore = new CertificateStore(join(dataDir, 'certificates.db'));
  // The gateway needs the services and the services tell the gateway about changes.
  const late: { gateway?: Gateway; directory?: CertificateDirectory } = {};
  const services: ServiceGroupService = new ServiceGroupService({
    store: groupStore,
    members: (uuid) => instances.list().filter((r) => groupOf(r) === uuid),
    policy,
    clock,
    metro,
    domain,
    quotas,
    limits: serviceLimits,
    defaultHardLimit: { ...DEFAULT_GATEWAY_LIMITS, ...opts.limits }.defaultHardLimit,
    certificates: {
      find: (principal, sel): CertificateRecord => certificates.findVisible(principal, sel, 'read'),
    },
    async onChange() {
      // Domains changed: which certificate each one is served with changes too.
      late.directory?.reload();
      try {
        await late.gateway?.refresh();
      } catch (err) {
        if (err instanceof GatewayListenError) throw new NodeError(Errno.EBUSY, err.message);
        throw err;
      }
    },
  });
  const directory = new CertificateDirectory(
    { cert: tls.certPem, key: tls.keyPem },
    () => certStore.list().map((c) => ({ uuid: c.uuid, owner: c.owner, hostnames: c.hostnames, chainPem: c.chainPem, keyPem: c.keyPem })),
    () => groupStore.list().flatMap((g) => g.domains.map((d) => ({ fqdn: d.fqdn, owner: g.owner, ...(d.certificate ? { certificate: d.certificate.uuid } : {}) }))),
  );
  late.directory = directory;
  const certificates: CertificateService = new CertificateService({
    store: certStore,
    policy,
    clock,
    limits: certLimits,
    inUse: (uuid): boolean => services.certificateInUse(uuid),
    onChange: () => directory.reload(),
  });
  const gatewayLimits: Partial<GatewayLimits> = { ...opts.limits };
  const gateway = new Gateway({
    backend: new NodeGatewayBackend({
      services,
      instances,
      lifecycle,
      principalFor,
      wakeTimeoutMs: gatewayLimits.wakeTimeoutMs ?? 30_000,
      ...(opts.addressOwner ? { addressOwner: opts.addressOwner } : {}),
    }),
    tls: directory,
    ...(opts.listenAddress ? { listenAddress: opts.listenAddress } : {}),
    ...(opts.alwaysOpen ? { alwaysOpen: opts.alwaysOpen } : {}),
    limits: gatewayLimits,
    ...(opts.log ? { log: opts.log } : {}),
    ...(opts.observer ? { observer: opts.observer } : {}),
  });
  // Ephemeral groups go with their last instance.
  const groupOfInstance = new Map<string, string>();
  for (const r of instances.list()) {
    const g = groupOf(r);
    if (g !== undefined) groupOfInstance.set(r.uuid, g);
  }
  const unwatch = lifecycle.watch((change) => {
    if ('record' in change) {
      const g = groupOf(change.record);
      if (g !== undefined) groupOfInstance.set(change.record.uuid, g);
      return;
    }
    const g = groupOfInstance.get(change.deleted);
    groupOfInstance.delete(change.deleted);
    if (g !== undefined) void services.releaseIfUnused(g);
  });
  const attachment: ServiceGroupAttachment = {
    async attach(principal, request) {
      if ('services' in request) {
        const g = await services.create(principal, request, false);
        return { uuid: g.uuid, rollback: () => services.releaseIfUnused(g.uuid) };
      }
      const g = services.findVisible(principal, request.uuid !== undefined ? { uuid: request.uuid } : { name: request.name ?? '' }, 'write');
      return { uuid: g.uuid, rollback: async () => undefined };
    },
    describe: (uuid) => services.describeForInstance(uuid),
  };
  late.gateway = gateway;
  const serviceGateway = gateway;
  return {
    groups: () => groupStore.list(),
    gateway: serviceGateway,
    tls,
    attachment,
    routes: (maxBatchItems) => [
      ...serviceRoutes(services, { ...serviceLimits, maxBatchItems }),
      ...certificateRoutes(certificates, { ...certLimits, maxBatchItems }),
    ],
    async close() {
      unwatch();
      await serviceGateway.close();
      groupStore.close();
      certStore.close();
    },
  };
}
