/**
 * The control plane as one node:http server: the central registry on /v2
 * (OCI Distribution, token auth against the platform's accounts) and the
 * control plane API on /v1.
 *
 * Layout of `dataDir`:
 *   registry/                  blobs + registry.db of the central registry
 *   auth.db                    accounts and API tokens
 *   root-token                 the root account's first token (0600, written once)
 *   registry-signing-key.pem   signs registry tokens (0600)
 *   controlplane.db            nodes
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  AccountStore,
  AuthError,
  AuthInputError,
  createPlatformAuthenticator,
  createRegistryAuthenticator,
  loadOrCreateSigningKey,
  Policy,
  RequestRateLimiter,
  type RegistryAuthenticator,
  type RequestRateLimitOptions,
} from '../auth/index.js';
import { createRegistry, openStores, RegistryError, type Authorizer, type Registry, type RegistryLimits, type RequestLogEntry } from '../registry/index.js';
import { createControlPlaneApi } from './api.js';
import { CentralImages } from './images.js';
import { NodeDirectory } from './nodes.js';
import { closeListener, createListener, listenOn, type CloseOptions, type Listener, type ListenerTimeouts, type ListenerTls } from '../util/index.js';
import { createLogger, reportInternalError, withRequestLogging, type Logger, type RequestLoggingOptions } from '../log/index.js';
import { isMetricsRequest, RoleMetrics, rootTokenAccess, serveMetrics } from '../metrics/index.js';
import { both } from '../util/index.js';

export interface ControlPlaneLimits {
  maxBodyBytes: number;
  maxBatchItems: number;
  /** A node silent this long is `offline`. */
  nodeOfflineAfterMs: number;
}

/**
 * Requests per second per account on the control plane API (`/v1`; the registry on /v2 has its
 * own). Nodes checking tokens through `/v1/auth` cache the answers, so this counts people.
 */
export const DEFAULT_CONTROL_PLANE_RATE_LIMIT: Readonly<Required<Pick<RequestRateLimitOptions, 'ratePerSecond' | 'burst'>>> = Object.freeze({
  ratePerSecond: 50,
  burst: 200,
});

export const DEFAULT_CONTROL_PLANE_LIMITS: ControlPlaneLimits = {
  maxBodyBytes: 1024 * 1024,
  maxBatchItems: 1000,
  nodeOfflineAfterMs: 60_000,
};

export interface ControlPlaneOptions {
  dataDir: string;
  host: string;
  /** 0 = any free port. */
  port: number;
  /** Host shown in image names (`{owner}/{registry}/{image}`); default: the public URL's host:port, else the listening host:port. */
  registryName?: string;
  /**
   * The origin clients reach this control plane by (`https://cp.example.com`): the registry
   * token realm and the printed addresses use it. Default: the listening address (fine on loopback).
   */
  publicUrl?: string;
  /** Serve HTTPS with this certificate and key (default plain HTTP). */
  tls?: ListenerTls;
  /** Let requests without credentials pull `official/*` (default true: runtimes are public). */
  anonymousPullOfficial?: boolean;
  limits?: Partial<ControlPlaneLimits>;
  /** Lifetime of the central registry's tokens (default DEFAULT_REGISTRY_TOKEN_TTL_SECONDS). */
  registryTokenTtlSeconds?: number;
  /** Limits of the central registry (default the registry's DEFAULT_LIMITS). */
  registryLimits?: Partial<RegistryLimits>;
  /** Socket inactivity timeout (ms) of the listener (API and registry); default DEFAULT_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** Header and keep-alive timeouts of the listener (default LISTENER_TIMEOUTS). */
  listenerTimeouts?: ListenerTimeouts;
  /** Per-account request rate on /v1 (429 + Retry-After); default DEFAULT_CONTROL_PLANE_RATE_LIMIT; `false`: none. */
  rateLimit?: RequestRateLimitOptions | false;
  /** Called for every finished registry request (metrics, tests). */
  onRegistryRequest?: (entry: RequestLogEntry) => void;
  /** The role's logger (default: JSON lines on stderr); every request gets a line and an id. */
  logger?: Logger;
  /** Per-request hooks of the request logging (metrics). */
  requestLogging?: Omit<RequestLoggingOptions, 'logger'>;
  /** This role's metrics (default: a fresh registry), served on GET /metrics to root. */
  metrics?: RoleMetrics;
  /** Where internal errors go; default: the request's log line (src/log/http.ts), else `logger`. */
  logError?: (err: unknown) => void;
}

export interface ControlPlane {
  /** `http(s)://host:port` it listens on: the API and the registry. */
  url: string;
  /** The origin clients are told to use (`publicUrl`, else `url`). */
  publicUrl: string;
  /** `host:port` of the central registry as clients name it (from `publicUrl`). */
  registryHost: string;
  /** The first root token, when this start created it (else undefined: see `rootTokenFile`). */
  rootTokenFile: string;
  accounts: AccountStore;
  metrics: RoleMetrics;
  registry: Registry;
  images: CentralImages;
  nodes: NodeDirectory;
  server: Listener;
  /** Stops serving; `deadlineMs` drains first (requests in flight may finish), default: cut at once. */
  close(options?: CloseOptions): Promise<void>;
}

/** Adapts auth's registry authenticator to the registry's hook, mapping its errors to registry errors. */
function registryAuthorizer(auth: RegistryAuthenticator): Authorizer {
  return async (req, access) => {
    try {
      const p =
        access.repository === undefined
          ? await auth.authorizeBase(req)
          : await auth.authorize(req, { repository: access.repository, actions: access.actions });
      if (access.catalog && !auth.mayListCatalog(p)) throw new RegistryError('DENIED');
      const name = p.kind === 'account' ? p.name : p.kind === 'grant' ? p.name : 'anonymous';
      return { name, anonymous: p.kind === 'anonymous' };
    } catch (err) {
      if (err instanceof AuthError) {
        const headers: Record<string, string> = {};
        if (err.challenge) headers['WWW-Authenticate'] = err.challenge;
        if (err.retryAfterSeconds) headers['Retry-After'] = String(err.retryAfterSeconds);
        if (err.code === 'UNAUTHORIZED') throw new RegistryError('UNAUTHORIZED', { message: err.message, headers });
        if (err.code === 'TOOMANYREQUESTS') throw new RegistryError('TOOMANYREQUESTS', { headers });
        throw new RegistryError('DENIED', { message: err.message });
      }
      if (err instanceof AuthInputError) throw new RegistryError('UNAUTHORIZED', { message: err.message, headers: { 'WWW-Authenticate': auth.challenge() } });
      throw err;
    }
  };
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const limits = { ...DEFAULT_CONTROL_PLANE_LIMITS, ...options.limits };
  const logger = options.logger ?? createLogger({ level: 'error', base: { role: 'controlplane' } });
  const logError = options.logError ?? ((err: unknown) => reportInternalError(err, logger));
  mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const server = createListener(options.tls, undefined, { ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}), ...options.listenerTimeouts });
  const { url } = await listenOn(server, options.host, options.port, options.tls);
  const publicUrl = options.publicUrl !== undefined ? new URL(options.publicUrl).origin : url;
  const registryHost = new URL(publicUrl).host;

  const accounts = new AccountStore({ path: join(options.dataDir, 'auth.db') });
  const rootTokenFile = join(options.dataDir, 'root-token');
  accounts.ensureRootAccount(rootTokenFile);
  const policy = new Policy({ anonymousPullOfficial: options.anonymousPullOfficial ?? true });
  const { blobs, metadata } = openStores(join(options.dataDir, 'registry'));
  const metrics = options.metrics ?? new RoleMetrics('controlplane');
  const metricsAccess = rootTokenAccess(accounts);
  const registryAuth = createRegistryAuthenticator({
    realm: `${publicUrl}/v2/token`,
    service: 'ukc-registry',
    issuer: 'ukc',
    policy,
    accounts,
    signingKey: loadOrCreateSigningKey(join(options.dataDir, 'registry-signing-key.pem')),
    rateLimiter: false,
    ...(options.registryTokenTtlSeconds !== undefined ? { tokenTtlSeconds: options.registryTokenTtlSeconds } : {}),
  });
  const registry = createRegistry({
    blobs,
    metadata,
    authorizer: registryAuthorizer(registryAuth),
    ...(options.registryLimits ? { limits: options.registryLimits } : {}),
    logger,
    logError,
    onRequest: both((e: RequestLogEntry) => metrics.observeRegistryBytes(e.bytesIn, e.bytesOut), options.onRegistryRequest),
  });
  const images = new CentralImages({ metadata, registryName: options.registryName ?? registryHost });
  const nodes = new NodeDirectory({ path: join(options.dataDir, 'controlplane.db'), offlineAfterMs: limits.nodeOfflineAfterMs });
  const api = createControlPlaneApi({
    images,
    nodes,
    policy,
    authenticator: createPlatformAuthenticator({
      accounts,
      ...(options.rateLimit === false ? {} : { rateLimiter: new RequestRateLimiter({ ...DEFAULT_CONTROL_PLANE_RATE_LIMIT, ...options.rateLimit }) }),
    }),
    quotasOf: (name) => accounts.getAccount(name)?.quotas,
    registry: registryHost,
    maxBodyBytes: limits.maxBodyBytes,
    maxBatchItems: limits.maxBatchItems,
    logger: options.logError ? { error: (fields, message) => logError({ msg: message, ...fields }) } : logger,
  });

  server.on('request', withRequestLogging((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (isMetricsRequest(req)) {
      serveMetrics(req, res, metrics, metricsAccess).catch((err: unknown) => {
        logError(err);
        res.destroy();
      });
    } else if (path === '/v2/token') {
      registryAuth.tokenEndpoint(req, res).catch((err: unknown) => {
        logError(err);
        res.destroy();
      });
    } else if (path === '/v2' || path.startsWith('/v2/')) {
      registry.handler(req, res);
    } else {
      api.listener(req, res);
    }
  }, { logger, routeOf: controlPlaneRoute, ...options.requestLogging, onFinished: both(metrics.observeRequest, options.requestLogging?.onFinished) }));

  let closed = false;
  return {
    url,
    publicUrl,
    registryHost,
    rootTokenFile,
    accounts,
    metrics,
    registry,
    images,
    nodes,
    server,
    async close(closeOptions?: CloseOptions) {
      if (closed) return;
      closed = true;
      await closeListener(server, closeOptions);
      await registry.close();
      await metadata.close();
      nodes.close();
      accounts.close();
    },
  };
}

/**
 * Route template of a control plane path (metrics labels and log lines): the API's
 * endpoints (see api.ts) with ids folded to `{uuid}`, `/v2/token`; anything else
 * `unmatched`, so label values stay a small fixed set whatever clients send.
 * (/v2 registry routes are named by the registry itself.)
 */
export function controlPlaneRoute(_method: string, path: string): string | undefined {
  if (path === '/v2/token') return '/v2/token';
  const parts = path.split('/').filter((p) => p !== '');
  if (parts[0] !== 'v1' || parts.length < 2) return undefined;
  const collection = parts[1]!;
  if (!CONTROL_PLANE_COLLECTIONS.has(collection)) return undefined;
  if (parts.length === 2) return `/v1/${collection}`;
  if (collection !== 'nodes' || parts.length > 4) return undefined;
  return parts.length === 3 ? '/v1/nodes/{uuid}' : parts[3] === 'health' ? '/v1/nodes/{uuid}/health' : undefined;
}

const CONTROL_PLANE_COLLECTIONS = new Set(['healthz', 'auth', 'images', 'metros', 'nodes']);
