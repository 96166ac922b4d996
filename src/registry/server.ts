/**
 * The registry as a request handler (`createRegistry`) that the node and the
 * control plane mount in their own servers, and as a standalone server
 * (`startRegistryServer`). Built on node:http only.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { FsBlobStore } from '../store/fs.js';
import { SqliteMetadataStore } from '../store/sqlite.js';
import type { BlobStore, MetadataStore } from '../store/types.js';
import { allowAnonymous, type Authorizer } from './auth.js';
import { RegistryError, sendError, toRegistryError } from './errors.js';
import type { RequestContext } from './http.js';
import { parseRepositoryName } from './names.js';
import { DEFAULT_LIMITS, type RegistryLimits, type RegistryOptions } from './options.js';
import { matchRoute } from './router.js';
import { RegistryService } from './service.js';

export interface Registry {
  /** Serves any request whose path starts with /v2. */
  handler: (req: IncomingMessage, res: ServerResponse) => void;
  service: RegistryService;
  limits: RegistryLimits;
  /** Stops the purge timer and closes stores this registry opened itself. */
  close(): Promise<void>;
}

/** Opens the default stores under `dataDir`: <dataDir>/blobs|uploads|tmp and <dataDir>/registry.db. */
export function openStores(dataDir: string): { blobs: FsBlobStore; metadata: SqliteMetadataStore } {
  mkdirSync(dataDir, { recursive: true });
  return { blobs: new FsBlobStore(dataDir), metadata: new SqliteMetadataStore(join(dataDir, 'registry.db')) };
}

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
  const authorizer: Authorizer = options.authorizer ?? allowAnonymous;
  const logError = options.logError ?? ((err: unknown) => console.error('registry: internal error:', err));

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
      const matched = matchRoute(url.pathname);
      if (!matched) throw new RegistryError('UNSUPPORTED', { status: 404, message: 'no such endpoint' });
      const { route, captures } = matched;
      const entry = route.methods[method];
      if (!entry) {
        throw new RegistryError('UNSUPPORTED', {
          message: `method ${method} not allowed here`,
          headers: { Allow: Object.keys(route.methods).join(', ') },
        });
      }
      const repo = route.hasRepository ? parseRepositoryName(captures[0]!, limits.maxRepositoryNameLength) : '';
      const access = route.hasRepository
        ? { repository: repo, actions: entry.actions }
        : route.catalog
          ? { actions: entry.actions, catalog: true }
          : { actions: entry.actions };
      const principal = await authorizer(req, access);
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
        authorizer,
        bytesIn,
      };
      await entry.handler(ctx);
    } catch (err) {
      const regErr = toRegistryError(err);
      if (regErr.code === 'UNKNOWN') logError(err);
      // An unread body would be parsed as the next request: close the connection instead.
      if (!req.complete) res.setHeader('Connection', 'close');
      sendError(res, regErr, head);
    }
  }

  return {
    handler(req, res) {
      const started = now();
      const bytesIn = { n: 0 };
      if (options.onRequest) {
        const log = options.onRequest;
        res.once('finish', () => {
          log({
            method: req.method ?? '',
            path: (req.url ?? '').split('?')[0]!,
            status: res.statusCode,
            bytesIn: bytesIn.n,
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
  /** Per-request socket inactivity timeout (ms, default 5 minutes). */
  requestTimeoutMs?: number;
}

export interface RegistryServer {
  registry: Registry;
  server: Server;
  address: ListenAddress;
  /** `http://host:port` */
  url: string;
  close(): Promise<void>;
}

export async function startRegistryServer(options: RegistryServerOptions): Promise<RegistryServer> {
  const listen = typeof options.listen === 'string' ? parseListen(options.listen) : options.listen;
  const registry = createRegistry(options);
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 }, registry.handler);
  server.setTimeout(options.requestTimeoutMs ?? 5 * 60_000);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const address = { host: addr.address, port: addr.port };
  const hostText = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    registry,
    server,
    address,
    url: `http://${hostText}:${addr.port}`,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await registry.close();
    },
  };
}
