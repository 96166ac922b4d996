/**
 * The HTTP(S) listeners of `ukcd registry`, `ukcd controlplane` and `ukcd node`
 * (ARCHITECTURE.md decision 7: every listener can serve TLS, certificate and
 * key from config). One handler serves both; only the socket layer differs.
 *
 * Invariant: a listener given TLS material never accepts plain HTTP, and its
 * URL says `https://`. The certificate and key are checked to form a usable
 * pair before anything listens, so a bad file is a clear error at start.
 *
 * node:http, node:https and node:tls load on first use (`builtin`): util is
 * imported on every `unikraft` start, and loading the three costs ~15–25 ms of
 * a ~70 ms bare Node start on this machine (issue 14 item 8, bench/cli/).
 */
import type { AddressInfo } from 'node:net';
import type * as http from 'node:http';
import type * as https from 'node:https';
import type * as tlsModule from 'node:tls';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { UsageError, UserError } from './command.js';
import type { OptionSpec } from './usage.js';

const builtin = createRequire(import.meta.url);

/** PEM certificate chain and private key of a listener. */
export interface ListenerTls {
  cert: Buffer;
  key: Buffer;
}

export type Listener = http.Server | https.Server;

/** Timeouts shared by the daemons' listeners (long uploads: no overall request timeout). */
export const LISTENER_TIMEOUTS = Object.freeze({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });

/**
 * A connection that moves no byte either way for this long (ms) is cut: a client that
 * sends half a blob and stalls would otherwise hold its upload (and its staged bytes)
 * forever. One setting for every daemon's listener (`ukcd registry`, `ukcd controlplane`,
 * `ukcd node`, both registries of `ukcd dev`). Long transfers are not cut while bytes flow.
 */
export const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;

/** The listeners' header and keep-alive timeouts (ms); defaults LISTENER_TIMEOUTS. */
export interface ListenerTimeouts {
  /** Longest time to receive a request's headers (a slow-headers client is cut). */
  headersTimeoutMs?: number;
  /** How long an idle keep-alive connection waits for its next request. */
  keepAliveTimeoutMs?: number;
}

export interface ListenerOptions extends ListenerTimeouts {
  /** Socket inactivity timeout (ms); default DEFAULT_IDLE_TIMEOUT_MS; 0 disables it. */
  idleTimeoutMs?: number;
}

/**
 * How long a daemon stopping on SIGTERM/SIGINT lets requests in flight (an upload, a pull, a
 * create waiting for its instances) finish before it cuts them. New connections are refused
 * from the first moment of the drain.
 */
export const DEFAULT_SHUTDOWN_DEADLINE_MS = 30_000;

export interface CloseOptions {
  /** Drain: let requests in flight finish for up to this long (ms), then cut them; 0 (default) cuts at once. */
  deadlineMs?: number;
}

/**
 * Closes a listener. With a deadline it drains: stops accepting at once, closes idle keep-alive
 * connections (now and as in-flight requests finish; their answers say `Connection: close`),
 * and cuts whatever is still open when the deadline passes. Resolves once every connection is
 * gone, with how many were cut.
 */
export async function closeListener(server: Listener, options: CloseOptions = {}): Promise<{ cut: number }> {
  const deadlineMs = options.deadlineMs ?? 0;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  if (deadlineMs <= 0) {
    server.closeAllConnections();
    await closed;
    return { cut: 0 };
  }
  // A request still arriving on a kept-alive connection is served, but ends its connection.
  const lastRequest = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
    res.shouldKeepAlive = false;
  };
  server.prependListener('request', lastRequest);
  server.closeIdleConnections();
  const idle = setInterval(() => server.closeIdleConnections(), 50);
  let cut = 0;
  const timer = setTimeout(() => {
    server.getConnections((_err, count) => {
      cut = count;
      server.closeAllConnections();
    });
  }, deadlineMs);
  try {
    await closed;
  } finally {
    clearInterval(idle);
    clearTimeout(timer);
    server.off('request', lastRequest);
  }
  return { cut };
}

/** A node:http server, or node:https with `tls`, calling `handler` for every request. */
export function createListener(tls: ListenerTls | undefined, handler?: http.RequestListener, options: ListenerOptions = {}): Listener {
  const timeouts = {
    ...LISTENER_TIMEOUTS,
    ...(options.headersTimeoutMs !== undefined ? { headersTimeout: options.headersTimeoutMs } : {}),
    ...(options.keepAliveTimeoutMs !== undefined ? { keepAliveTimeout: options.keepAliveTimeoutMs } : {}),
  };
  const server = tls ? (builtin('node:https') as typeof https).createServer({ ...timeouts, cert: tls.cert, key: tls.key }, handler) : (builtin('node:http') as typeof http).createServer({ ...timeouts }, handler);
  // Without a 'timeout' listener on the server, node destroys the idle socket itself.
  server.setTimeout(options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS);
  return server;
}

/**
 * Starts `server` listening on host:port (0 picks a free port) and answers the
 * bound address, the URL clients use to reach it and its `host:port` (the port
 * always written, unlike `URL.host`).
 */
export async function listenOn(
  server: Listener,
  host: string,
  port: number,
  tls: ListenerTls | undefined,
): Promise<{ address: AddressInfo; url: string; authority: string }> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostText = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const authority = `${hostText}:${address.port}`;
  return { address, url: `${schemeOf(tls)}://${authority}`, authority };
}

/** `http` or `https`, as the listener serves. */
export function schemeOf(tls: ListenerTls | undefined): 'http' | 'https' {
  return tls ? 'https' : 'http';
}

/** The `--tls-cert` / `--tls-key` rows of a command's option table. */
export const TLS_OPTIONS = {
  'tls-cert': { type: 'string', value: 'FILE', help: 'serve HTTPS with this PEM certificate (chain); needs --tls-key' },
  'tls-key': { type: 'string', value: 'FILE', help: 'the PEM private key of --tls-cert' },
} as const satisfies Record<string, OptionSpec>;

/** Reads `--tls-cert FILE --tls-key FILE` (both or neither); undefined means plain HTTP. */
export function tlsFromOptions(values: { 'tls-cert'?: string | undefined; 'tls-key'?: string | undefined }): ListenerTls | undefined {
  const certPath = values['tls-cert'];
  const keyPath = values['tls-key'];
  if (certPath === undefined && keyPath === undefined) return undefined;
  if (certPath === undefined || keyPath === undefined) throw new UsageError('--tls-cert FILE and --tls-key FILE go together');
  return readListenerTls(certPath, keyPath);
}

/** Reads a certificate and key and checks they form a usable pair. */
export function readListenerTls(certPath: string, keyPath: string): ListenerTls {
  let cert: Buffer;
  let key: Buffer;
  try {
    cert = readFileSync(certPath);
    key = readFileSync(keyPath);
  } catch (err) {
    throw new UserError(`cannot read the TLS certificate or key: ${(err as Error).message}`);
  }
  try {
    (builtin('node:tls') as typeof tlsModule).createSecureContext({ cert, key });
  } catch (err) {
    throw new UserError(`TLS certificate ${certPath} and key ${keyPath} are not a usable pair: ${(err as Error).message}`);
  }
  return { cert, key };
}

/**
 * Reads a public base URL (`--public-url`): http(s), no credentials, query or
 * fragment, no path; answers its origin (`https://cp.example.com:7000`).
 */
export function parsePublicUrl(text: string): string {
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new UsageError(`--public-url "${text}" is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError('--public-url must be an http(s) URL');
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || (u.pathname !== '/' && u.pathname !== '')) {
    throw new UsageError('--public-url takes scheme, host and port only (no credentials, path, query or fragment)');
  }
  return u.origin;
}
