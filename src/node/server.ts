/**
 * The node as one process (`ukcd node`): one node:http server serving the
 * local registry on /v2 (image cache and push target) and the controller REST
 * API v1 on /v1, over the `micro` runtime, the node network and the image
 * cache backed by the central registry.
 *
 * Layout of `home` (0700, like rootfs/; everything the node keeps; nothing is lost on kill -9):
 *   registry/           blobs + registry.db of the local registry
 *   rootfs/             prepared root filesystems (EROFS image + mount, or extracted CPIO), per layer digest
 *   api/                instances.db and console logs
 *   runs/<uuid>/        the live run of an instance (console, events, overlay upper/work)
 *   runs/pool-<id>/     a pre-started launcher waiting to become a run (renamed to runs/<uuid>)
 *   network/            leases.json and the hosts file bound into instances
 *   api/tls/            the gateway's generated CA and wildcard certificate (keys 0600)
 *   api/services.db, api/certificates.db   service groups and user certificates
 *   registry-signing-key.pem   signs the local registry's tokens (0600; accounts mode)
 *
 * Authentication (`auth`, required — there is no silent default):
 *   - `accounts`: an AccountStore in this process (`ukcd dev` shares the control
 *     plane's; `ukcd node --accounts-db` opens the file a control plane on the same
 *     machine uses). /v1 takes `Bearer <API token>`; /v2 is the full token flow
 *     (`/v2/token` at this node's own URL), exactly as the central registry;
 *   - `controlplane`: tokens are checked by the control plane's `GET /v1/auth`
 *     (cached briefly, see auth.ts); /v2 takes the API token directly
 *     (`Bearer ukc_…`, or Basic with the token as password);
 *   - `none`: single tenant, every request is the root-like `local` account. For
 *     tests and throwaway setups only; the daemon prints a warning.
 * In both account modes /v2 lets anyone pull `official/*` (the runtimes builds
 * start from); everything else follows src/auth's policy (owners, root).
 */
import { closeListener, createListener, listenOn, type CloseOptions, type Listener, type ListenerTimeouts, type ListenerTls } from '../util/index.js';
import { join } from 'node:path';
import { chmodSync, mkdirSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { createRegistry, createRegistryAuth, openStores, RegistryError, type Registry, type RegistryAccessControl, type RegistryLimits } from '../registry/index.js';
import { Policy, type AccountStore, type RequestRateLimitOptions } from '../auth/index.js';
import { createNodeApi, DEFAULT_NODE_API_LIMITS, type NodeApi } from './compose.js';
import {
  ControlPlaneTokenVerifier,
  localTokenVerifier,
  presentedToken,
  tokenAuthenticator,
  type Authenticator,
  type ControlPlaneTokenVerifierOptions,
  type TokenVerifier,
} from './auth.js';
import { userDirectoryFromAccounts } from './users.js';
import { NodeError } from './errors.js';
import { LocalImages, type LocalImagesLimits } from './images/local.js';
import { DEFAULT_IMAGE_CACHE_BYTES } from './images/cache.js';
import { imagePullCheck } from './images/pull-access.js';
import { MicroDriver, type MicroDriverLimits } from './runtime/micro.js';
import { NodeNetwork, DEFAULT_NODE_NETWORK } from './network/index.js';
import type { NodeApiLimits, NodeGatewayOptions } from './compose.js';
import { createLogger, reportInternalError, withRequestLogging, type Logger, type RequestLoggingOptions } from '../log/index.js';
import { directoryBytes, isMetricsRequest, NodeMetrics, RoleMetrics, rootTokenAccess, serveMetrics, type MetricsAccess } from '../metrics/index.js';
import { both } from '../util/index.js';

/** How the node authenticates /v1 and /v2 (see the file comment). */
export type NodeAuthOption =
  | { mode: 'accounts'; accounts: AccountStore }
  | ({ mode: 'controlplane' } & ControlPlaneTokenVerifierOptions)
  | { mode: 'none' };

export interface NodeServerOptions {
  auth: NodeAuthOption;
  /** Per-account request rate on /v1 (default: the node API's); `false`: none. */
  rateLimit?: RequestRateLimitOptions | false;
  /** host and port to listen on (port 0 = any free one). */
  host: string;
  port: number;
  /** Central registry base URL, e.g. http://127.0.0.1:5000. */
  centralUrl?: string;
  /** Base URLs of other registries instances may pull images from (see images/local.ts `locateImage`). */
  allowedRegistries?: readonly string[];
  home: string;
  /** Bridge name and instance subnet. */
  bridge?: string;
  subnet?: string;
  /** Network namespaces kept ready for the next starts (default DEFAULT_NETNS_POOL_SIZE). */
  netnsPoolSize?: number;
  /** Lines the lease log grows to before it is compacted (default DEFAULT_LEASE_LOG_MAX_LINES). */
  leaseLogMaxLines?: number;
  /** The local registry's token flow in `accounts` mode: token lifetime and per-principal request rate. */
  registryAuth?: { tokenTtlSeconds?: number; rateLimit?: RequestRateLimitOptions | false };
  /** Cgroup parent of this node's instances (one per node, so two nodes never mix). */
  cgroupParent?: string;
  limits?: Partial<NodeApiLimits>;
  runtimeLimits?: Partial<MicroDriverLimits>;
  /** Limits of the local registry (/v2). */
  registryLimits?: Partial<RegistryLimits>;
  /** Limits of the image cache (sizes of manifests, configs, kernels, initrds read). */
  imageLimits?: Partial<LocalImagesLimits>;
  launcherPath?: string;
  /** The gateway (public ports, TLS, service groups); absent: no service groups on this node. */
  gateway?: NodeGatewayOptions;
  /** Serve the API and local registry over HTTPS with this certificate and key (default plain HTTP). */
  tls?: ListenerTls;
  /**
   * The origin clients reach this node by (e.g. behind a proxy or when listening
   * on 0.0.0.0): the registry token realm and the node's own registry host in
   * image references use it. Default: the listen address.
   */
  publicUrl?: string;
  /** Most bytes the image cache keeps (registry blobs + root filesystems); default DEFAULT_IMAGE_CACHE_BYTES (20 GiB). */
  imageCacheBytes?: number;
  /** Socket inactivity timeout (ms) of the listener (API and local registry); default DEFAULT_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** Header and keep-alive timeouts of the listener (default LISTENER_TIMEOUTS). */
  listenerTimeouts?: ListenerTimeouts;
  /** The role's logger (default: JSON lines on stderr); every request gets a line and an id. */
  logger?: Logger;
  /** Per-request hooks of the request logging (metrics). */
  requestLogging?: Omit<RequestLoggingOptions, 'logger'>;
  /** This role's metrics (default: a fresh registry), served on GET /metrics to root (open with auth `none`). */
  metrics?: RoleMetrics;
}

export interface NodeServer {
  /** `http://host:port`, or `https://` with `tls` */
  url: string;
  server: Listener;
  metrics: RoleMetrics;
  api: NodeApi;
  registry: Registry;
  images: LocalImages;
  network: NodeNetwork;
  /**
   * Stops serving; instances keep running (they are re-adopted at the next start). With
   * `deadlineMs` it drains first: no new connection, requests in flight finish (or are cut
   * at the deadline), then the API, registry and runtime close.
   */
  close(options?: CloseOptions): Promise<void>;
}

export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const home = options.home;
  const logger = options.logger ?? createLogger({ level: 'error', base: { role: 'node' } });
  // Private (0700): the home holds tenants' images and root filesystems (setuid
  // files included), instance state and keys; no other local user may reach them.
  for (const dir of [home, join(home, 'rootfs')]) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
  }
  const network = new NodeNetwork({
    bridge: options.bridge ?? DEFAULT_NODE_NETWORK.bridge,
    subnet: options.subnet ?? DEFAULT_NODE_NETWORK.subnet,
    stateDir: join(home, 'network'),
    ...(options.netnsPoolSize !== undefined ? { poolSize: options.netnsPoolSize } : {}),
    ...(options.leaseLogMaxLines !== undefined ? { leaseLogMaxLines: options.leaseLogMaxLines } : {}),
  });
  await network.init();
  const { blobs, metadata } = openStores(join(home, 'registry'));
  const server = createListener(options.tls, undefined, { ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}), ...options.listenerTimeouts });
  const { url, authority } = await listenOn(server, options.host, options.port, options.tls);
  const publicUrl = options.publicUrl !== undefined ? new URL(options.publicUrl).origin : url;
  const publicAuthority = options.publicUrl !== undefined ? new URL(options.publicUrl).host : authority;
  const policy = new Policy({ anonymousPullOfficial: true });
  let authenticate: Authenticator | undefined;
  let access: RegistryAccessControl | undefined;
  if (options.auth.mode === 'accounts') {
    authenticate = tokenAuthenticator(localTokenVerifier(options.auth.accounts));
    access = createRegistryAuth({
      publicUrl,
      accounts: options.auth.accounts,
      signingKeyFile: join(home, 'registry-signing-key.pem'),
      anonymousPullOfficial: true,
      ...options.registryAuth,
    });
  } else if (options.auth.mode === 'controlplane') {
    const { mode: _mode, ...verifierOptions } = options.auth;
    const verifier = new ControlPlaneTokenVerifier(verifierOptions);
    authenticate = tokenAuthenticator(verifier);
    access = tokenRegistryAccess(verifier, policy);
  }
  const metrics = options.metrics ?? new RoleMetrics('node');
  const registry = createRegistry({
    blobs,
    metadata,
    logger,
    onRequest: (e) => metrics.observeRegistryBytes(e.bytesIn, e.bytesOut),
    ...(access ? { access } : {}),
    ...(options.registryLimits ? { limits: options.registryLimits } : {}),
  });
  // Late: the instances exist once the API does; until then nothing is evicted.
  const late: { node?: NodeMetrics; api?: NodeApi } = {};
  const images = new LocalImages({
    blobs,
    metadata,
    cache: {
      budgetBytes: options.imageCacheBytes ?? DEFAULT_IMAGE_CACHE_BYTES,
      stateFile: join(home, 'image-cache.json'),
      registryDir: join(home, 'registry'),
      inUse: () => late.api?.imagesInUse(),
    },
    service: registry.service,
    cacheDir: join(home, 'rootfs'),
    registryHost: publicAuthority,
    ...(options.centralUrl ? { centralUrl: options.centralUrl } : {}),
    ...(options.allowedRegistries ? { allowedRegistries: options.allowedRegistries } : {}),
    ...(options.imageLimits ? { limits: options.imageLimits } : {}),
  });
  const driver = new MicroDriver({
    runsDir: join(home, 'runs'),
    network,
    cgroupParent: options.cgroupParent ?? '/ukc-node',
    ...(options.runtimeLimits ? { limits: options.runtimeLimits } : {}),
    ...(options.launcherPath ? { launcherPath: options.launcherPath } : {}),
  });
  // Gateway counts land on the node metrics once they exist (the gateway starts with the API).
  const gatewayObserver = {
    request: (status: number) => late.node?.gatewayRequest(status),
    wake: (ok: boolean) => late.node?.gatewayWake(ok),
  };
  let api: NodeApi;
  try {
    await driver.init();
    api = await createNodeApi({
      dataDir: join(home, 'api'),
      runtime: driver,
      images,
      catalog: images,
      logger,
      // The bridge bounds how many instances one node runs (the pool's ready namespaces hold ports too).
      limits: { ...options.limits, maxInstances: Math.min(options.limits?.maxInstances ?? DEFAULT_NODE_API_LIMITS.maxInstances, network.maxPorts - network.poolSize) },
      ...(options.gateway ? { gateway: { ...options.gateway, observer: gatewayObserver, addressOwner: (ip: string) => network.ownerOf(ip) } } : {}),
      ...(authenticate
        ? {
            authenticate,
            policy,
            mayPullImage: imagePullCheck(
              (u) => images.locate(u),
              (principal, repository) => policy.authorize(principal, 'pull', { kind: 'repository', name: repository }).allow,
            ),
          }
        : {}),
      ...(options.auth.mode === 'accounts' ? { users: userDirectoryFromAccounts(options.auth.accounts) } : {}),
      ...(options.rateLimit !== undefined ? { rateLimit: options.rateLimit } : {}),
    });
  } catch (err) {
    server.close();
    await registry.close();
    await metadata.close();
    await driver.close();
    await network.close();
    throw err;
  }
  late.api = api;
  const nodeMetrics = new NodeMetrics(metrics, {
    instanceStates: () => api.instanceStates(),
    imageCacheBytes: async () => (await directoryBytes(join(home, 'registry'))) + (await directoryBytes(join(home, 'rootfs'))),
  });
  late.node = nodeMetrics;
  // Boot and network times: observed once per start, when the record first carries each.
  const seen = new Map<string, { boot: number | null; net: number | null }>();
  const unwatch = api.watch((change) => {
    if (!('record' in change)) {
      seen.delete(change.deleted);
      return;
    }
    const r = change.record;
    const last = seen.get(r.uuid) ?? { boot: null, net: null };
    if (r.bootTimeUs !== null && r.bootTimeUs !== last.boot) nodeMetrics.observeBoot(r.bootTimeUs);
    if (r.netTimeUs !== null && r.netTimeUs !== last.net) nodeMetrics.observeNet(r.netTimeUs);
    seen.set(r.uuid, { boot: r.bootTimeUs, net: r.netTimeUs });
  });
  const metricsAccess = nodeMetricsAccess(options.auth, authenticate);
  server.on(
    'request',
    withRequestLogging(
      (req, res) => {
        const url = req.url ?? '/';
        if (isMetricsRequest(req)) void serveMetrics(req, res, metrics, metricsAccess).catch((err: unknown) => reportInternalError(err, logger));
        else if (url === '/v2' || url.startsWith('/v2/')) registry.handler(req, res);
        else api.handler(req, res);
      },
      { logger, ...options.requestLogging, onFinished: both(metrics.observeRequest, options.requestLogging?.onFinished) },
    ),
  );
  let closed = false;
  return {
    url,
    server,
    metrics,
    api,
    registry,
    images,
    network,
    async close(closeOptions?: CloseOptions) {
      if (closed) return;
      closed = true;
      await closeListener(server, closeOptions);
      unwatch();
      await api.close();
      images.close();
      await registry.close();
      await metadata.close();
      await driver.close();
      await network.close();
    },
  };
}

/**
 * /v2 access when tokens are checked by the control plane: no token flow of our own, the API
 * token itself (`Bearer ukc_…` or Basic with it as password) on every request, then src/auth's
 * policy for the route's repository and actions (deny by default). Anonymous requests may
 * pull `official/*`; anything else gets 401 with a Basic challenge.
 */
export function tokenRegistryAccess(verifier: TokenVerifier, policy: Policy): RegistryAccessControl {
  const challenge = { 'WWW-Authenticate': 'Basic realm="ukc node registry"' };
  const principalOf = async (req: IncomingMessage) => {
    if (req.headers.authorization === undefined) return undefined;
    const token = presentedToken(req.headers, { basic: true });
    let found;
    try {
      found = token === undefined ? undefined : await verifier.verify(token);
    } catch (err) {
      if (err instanceof NodeError && err.httpStatus === 429) throw new RegistryError('TOOMANYREQUESTS', { headers: err.headers as Record<string, string> });
      throw new RegistryError('UNAUTHORIZED', { message: err instanceof NodeError ? err.message : 'cannot verify the token', headers: challenge });
    }
    if (found === undefined) throw new RegistryError('UNAUTHORIZED', { message: 'invalid token', headers: challenge });
    return found;
  };
  const authorize: RegistryAccessControl['authorize'] = async (req, need) => {
    const account = await principalOf(req);
    const p = account ?? ({ kind: 'anonymous' } as const);
    if (need.catalog === true) {
      if (!policy.mayListCatalog(p)) throw account ? new RegistryError('DENIED') : new RegistryError('UNAUTHORIZED', { headers: challenge });
    } else if (need.repository !== undefined) {
      const repository = need.repository;
      for (const action of need.actions) {
        if (policy.authorize(p, action, { kind: 'repository', name: repository }).allow) continue;
        throw account ? new RegistryError('DENIED', { message: `may not ${action} ${repository}` }) : new RegistryError('UNAUTHORIZED', { headers: challenge });
      }
    } else if (!account) {
      throw new RegistryError('UNAUTHORIZED', { headers: challenge });
    }
    return account ? { name: account.name, anonymous: false } : { name: 'anonymous', anonymous: true };
  };
  return { authorize };
}

/** Who may read the node's /metrics: root (its API token), or anyone on a node without authentication. */
function nodeMetricsAccess(auth: NodeAuthOption, authenticate: Authenticator | undefined): MetricsAccess {
  if (auth.mode === 'accounts') return rootTokenAccess(auth.accounts);
  if (authenticate === undefined) return undefined;
  return async (headers) => {
    let principal;
    try {
      principal = await authenticate(headers);
    } catch {
      return 'unauthenticated';
    }
    if (principal === undefined) return 'unauthenticated';
    return principal.role === 'root' ? 'ok' : 'forbidden';
  };
}
