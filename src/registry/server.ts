/**
 * The registry as a request handler (`createRegistry`) that the node and the
 * control plane mount in their own servers, and as a standalone server
 * (`startRegistryServer`). Built on node:http (node:https with TLS) only.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { closeListener, createListener, listenOn, type CloseOptions, type Listener, type ListenerTimeouts, type ListenerTls } from '../util/index.js';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FsBlobStore } from '../store/index.js';
import { SqliteMetadataStore } from '../store/index.js';
import type { BlobStore, MetadataStore } from '../store/index.js';
import { allowAnonymous, mountByAuthorizer, type RegistryAccessControl } from './auth.js';
import { RegistryError, sendError, toRegistryError } from './errors.js';
import type { RequestContext } from './http.js';
import { parseRepositoryName } from './names.js';
import { DEFAULT_LIMITS, type RegistryLimits, type RegistryOptions, type RequestLogEntry } from './options.js';
import { isMetricsRequest, RoleMetrics, serveMetrics, type MetricsAccess } from '../metrics/index.js';
import { matchRoute } from './router.js';
import { RegistryService } from './service.js';
import { createLogger, reportInternalError, requestLogger, setRouteTemplate, withRequestLogging, type RequestLoggingOptions } from '../log/index.js';
import { both, isPeerGone } from '../util/index.js';

export interface Registry {
  /** Serves any request whose path starts with /v2. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  service: RegistryService;
  limits: RegistryLimits;
  /** Stops the purge timer and closes stores this registry opened itself. */
  close(): Promise<void>;
}

/**
 * Opens the default stores under `dataDir`: <dataDir>/blobs|uploads|tmp and <dataDir>/registry.db.
 * `serving: false` for a tool beside a running server (gc): it never sweeps the server's tmp/.
 */
export function openStores(dataDir: string, opts: { serving?: boolean } = {}): { blobs: FsBlobStore; metadata: SqliteMetadataStore } {
  mkdirSync(dataDir, { recursive: true });
  return {
    blobs: new FsBlobStore(dataDir, { sweepLeftovers: opts.serving ?? true }),
    metadata: new SqliteMetadataStore(join(dataDir, 'registry.db')),
  };
}

/** Where the token endpoint is served when the access control has one (the challenge's realm). */
export const TOKEN_PATH = '/v2/token';

export function createRegistry(options: RegistryOptions = {}): Registry {
  const limits: RegistryLimits = { ...DEFAULT_LIMITS, ...options.limits };
  let blobs: BlobStore | undefined = options.blobs;
  let metadata: MetadataStore | undefined = options.metadata;
  let ownsMetadata = false;
  if (!blobs || !metadata) {
    if (options.dataDir === undefined) throw new Error('createRegistry needs dataDir, or both blobs and metadata stores');
    const opened = openStores(options.dataDir);
    blobs ??= opened.blobs;
    if (metadata) void opened.metadata.close();
    else {
      metadata = opened.metadata;
      ownsMetadata = true;
    }
  }
  const now = options.now ?? Date.now;
  const service = new RegistryService(blobs, metadata, limits, options.deleteEnabled ?? true, now);
  const authorize = options.access?.authorize ?? options.authorizer ?? allowAnonymous;
  const access = { authorize, mayMount: options.access?.mayMount ?? mountByAuthorizer(authorize) };
  const tokenEndpoint = options.access?.tokenEndpoint;
  // Embedded without a logger (tests, tools): internal errors still reach stderr.
  const logger = options.logger ?? createLogger({ level: 'error', base: { role: 'registry' } });
  // Inside a request the cause lands on that request's log line (see src/log/http.ts); outside, at once.
  const logError = options.logError ?? ((err: unknown) => reportInternalError(err, logger));

  let purgeTimer: NodeJS.Timeout | undefined;
  if (limits.uploadPurgeIntervalMs > 0) {
    purgeTimer = setInterval(() => {
      service.purgeStaleUploads().catch(logError);
    }, limits.uploadPurgeIntervalMs);
    purgeTimer.unref();
  }

  async function handle(req: IncomingMessage, res: ServerResponse, bytesIn: { n: number }): Promise<void> {
    const method = req.method ?? 'GET';
    const head = method === 'HEAD';
    res.setHeader('Docker-Distribution-API-Version', 'registry/2.0');
    try {
      const url = new URL(req.url ?? '/', 'http://registry.invalid');
      if (tokenEndpoint && url.pathname === TOKEN_PATH) {
        // The token endpoint speaks its own error format (the token spec's), and ends the response itself.
        await tokenEndpoint(req, res);
        return;
      }
      const matched = matchRoute(url.pathname);
      if (!matched) throw new RegistryError('UNSUPPORTED', { status: 404, message: 'no such endpoint' });
      const { route, captures } = matched;
      setRouteTemplate(`/v2 ${route.name}`);
      const entry = route.methods[method];
      if (!entry) {
        throw new RegistryError('UNSUPPORTED', {
          message: `method ${method} not allowed here`,
          headers: { Allow: Object.keys(route.methods).join(', ') },
        });
      }
      const repo = route.hasRepository ? parseRepositoryName(captures[0]!, limits.maxRepositoryNameLength) : '';
      const need = route.hasRepository
        ? { repository: repo, actions: entry.actions }
        : route.catalog
          ? { actions: entry.actions, catalog: true }
          : { actions: entry.actions };
      const principal = await authorize(req, need);
      const ctx: RequestContext = {
        req,
        res,
        url,
        method,
        params: (route.hasRepository ? captures.slice(1) : captures).map(decodeSegment),
        repo,
        principal,
        service,
        limits,
        access,
        bytesIn,
      };
      await entry.handler(ctx);
    } catch (err) {
      if (clientGone(req, res, err)) {
        // The client closed the connection (a blob GET cut short, an upload abandoned): nothing
        // to answer and no bug; the request's log line says `aborted`.
        requestLogger(logger).debug({ err: { code: (err as { code?: unknown }).code } }, 'client went away');
        res.destroy();
        return;
      }
      const regErr = toRegistryError(err);
      if (regErr.code === 'UNKNOWN') logError(err);
      // The client may still be sending a body: read and drop a bounded amount of it, so the
      // client reads this answer rather than a reset (a socket closed on unread bytes sends
      // RST, which makes the peer discard the answer it has not read yet).
      if (!req.complete) drainThenClose(req, res, limits.maxDrainBytes, limits.maxDrainMs);
      sendError(res, regErr, head);
    }
  }

  return {
    handler(req, res) {
      const started = now();
      const bytesIn = { n: 0 };
      if (options.onRequest) {
        const log = options.onRequest;
        const bytesOut = countBytesOut(res);
        // 'close', not 'finish': a client that hangs up as soon as it has its bytes can
        // leave 'finish' unfired (the last write's callback never runs), and the request
        // would go unlogged and uncounted.
        res.once('close', () => {
          log({
            method: req.method ?? '',
            path: (req.url ?? '').split('?')[0]!,
            status: res.statusCode,
            bytesIn: bytesIn.n,
            bytesOut: bytesOut.n,
            durationMs: now() - started,
          });
        });
      }
      handle(req, res, bytesIn).catch((err: unknown) => {
        logError(err);
        res.destroy();
      });
    },
    service,
    limits,
    async close() {
      if (purgeTimer) clearInterval(purgeTimer);
      if (ownsMetadata) await metadata.close();
    },
  };
}

/**
 * The failure is the client's leaving, not ours: its connection is gone (socket destroyed,
 * response unfinished) and the error is what a stream raises when its peer disappears.
 */
function clientGone(req: IncomingMessage, res: ServerResponse, err: unknown): boolean {
  // The error decides: a failure of ours (a full disk) may destroy the request stream too, and
  // still gets its answer.
  if (res.writableFinished || !isPeerGone(err)) return false;
  return req.socket === null || req.socket.destroyed || res.destroyed;
}

/** Counts the body bytes written to `res` (metrics): wraps its write and end, the two ways a body leaves. */
function countBytesOut(res: ServerResponse): { n: number } {
  const count = { n: 0 };
  const add = (chunk: unknown, encoding: unknown): void => {
    if (typeof chunk === 'string') count.n += Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
    else if (chunk instanceof Uint8Array) count.n += chunk.byteLength;
  };
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
  res.write = ((...args: unknown[]) => {
    add(args[0], args[1]);
    return write(...args);
  }) as ServerResponse['write'];
  res.end = ((...args: unknown[]) => {
    if (typeof args[0] !== 'function') add(args[0], args[1]);
    return end(...args);
  }) as ServerResponse['end'];
  return count;
}

/** Percent-decodes one path segment (a digest may arrive as sha256%3A...); malformed escapes stay as sent. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `host:port` (`[::1]:5000` for IPv6). */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new Error(`invalid listen address "${text}": want host:port`);
  return { host: m[1] ?? m[2]!, port };
}

export interface RegistryServerOptions extends RegistryOptions {
  listen: ListenAddress | string;
  /**
   * Access control built once the server's URL is known (a token realm must name it,
   * and with port 0 it is known only after listening). Overrides `access`.
   */
  accessFor?: (serverUrl: string) => RegistryAccessControl;
  /** Socket inactivity timeout (ms); default the listeners' shared DEFAULT_IDLE_TIMEOUT_MS. */
  idleTimeoutMs?: number;
  /** Header and keep-alive timeouts of the listener (default LISTENER_TIMEOUTS). */
  listenerTimeouts?: ListenerTimeouts;
  /** Serve HTTPS with this certificate and key (default plain HTTP). */
  tls?: ListenerTls;
  /** Per-request hooks of the server's request logging (metrics, route names of other paths). */
  requestLogging?: Omit<RequestLoggingOptions, 'logger'>;
  /** This role's metrics (default: a fresh registry); served on GET /metrics. */
  metrics?: RoleMetrics;
  /**
   * Who may read /metrics. Default: everyone when the registry has no access control,
   * nobody when it has one (give `rootTokenAccess(accounts)`).
   */
  metricsAccess?: MetricsAccess;
}

export interface RegistryServer {
  registry: Registry;
  server: Listener;
  address: ListenAddress;
  /** `http://host:port`, or `https://` with `tls` */
  url: string;
  /** Stops serving; `deadlineMs` drains (requests in flight may finish), default: cut at once. */
  close(options?: CloseOptions): Promise<void>;
}

export async function startRegistryServer(options: RegistryServerOptions): Promise<RegistryServer> {
  const listen = typeof options.listen === 'string' ? parseListen(options.listen) : options.listen;
  // Listen first, build the registry once the URL is known; nothing is served before that.
  let registry: Registry | undefined;
  const logger = options.logger ?? createLogger({ level: 'error', base: { role: 'registry' } });
  const metrics = options.metrics ?? new RoleMetrics('registry');
  const guarded = options.access !== undefined || options.accessFor !== undefined || options.authorizer !== undefined;
  const metricsAccess: MetricsAccess = 'metricsAccess' in options ? options.metricsAccess : guarded ? () => 'forbidden' : undefined;
  const server = createListener(
    options.tls,
    withRequestLogging(
      (req, res) => {
        if (isMetricsRequest(req)) void serveMetrics(req, res, metrics, metricsAccess).catch((err: unknown) => reportInternalError(err, logger));
        else if (registry) registry.handler(req, res);
        else res.writeHead(503, { 'Retry-After': '1', 'Content-Length': 0 }).end();
      },
      { logger, ...options.requestLogging, onFinished: both(metrics.observeRequest, options.requestLogging?.onFinished) },
    ),
    { ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}), ...options.listenerTimeouts },
  );
  const { address: addr, url } = await listenOn(server, listen.host, listen.port, options.tls);
  const address = { host: addr.address, port: addr.port };
  try {
    const onRequest = both((e: RequestLogEntry) => metrics.observeRegistryBytes(e.bytesIn, e.bytesOut), options.onRequest);
    registry = createRegistry({ ...options, logger, onRequest, ...(options.accessFor ? { access: options.accessFor(url) } : {}) });
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    throw err;
  }
  const opened = registry;
  return {
    registry: opened,
    server,
    address,
    url,
    async close(closeOptions?: CloseOptions) {
      await closeListener(server, closeOptions);
      await opened.close();
    },
  };
}

/**
 * Reads and drops what is left of a request body, up to `maxBytes` or `maxMs` (a "lingering
 * close"). Node would end the connection as soon as the answer is out when the client asked
 * for `Connection: close`; a client still sending then gets a reset, and a reset makes its
 * kernel drop the answer it has not read yet. So the connection is kept while the body drains:
 * once the body has ended, a client that asked to close is closed, another keeps its
 * connection; past either bound the socket is cut. The socket is taken now: node may detach it
 * from the request (`req.socket` becomes null) once the answer is sent.
 */
function drainThenClose(req: IncomingMessage, res: ServerResponse, maxBytes: number, maxMs: number): void {
  const socket = req.socket as IncomingMessage['socket'] | null;
  if (!res.headersSent) res.shouldKeepAlive = true;
  const clientCloses = /\bclose\b/i.test(String(req.headers.connection ?? '')) || req.httpVersion === '1.0';
  let drained = 0;
  const cut = (): void => {
    clearTimeout(timer);
    socket?.destroy();
  };
  const timer = setTimeout(cut, maxMs);
  timer.unref();
  socket?.once('close', () => clearTimeout(timer));
  req.on('data', (chunk: Buffer) => {
    drained += chunk.length;
    if (drained > maxBytes) cut();
  });
  req.once('end', () => {
    clearTimeout(timer);
    if (clientCloses) socket?.end();
  });
  req.once('error', () => clearTimeout(timer));
  req.resume();
}

