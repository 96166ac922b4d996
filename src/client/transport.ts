/**
 * The HTTP layer of the registry client, on node:http/https with keep-alive
 * agents (request bodies are streamed straight into the socket with
 * backpressure; nothing is buffered here).
 *
 * Invariants (security-cases.md row 10, ARCHITECTURE decision 7):
 * - Plain HTTP is used only for loopback hosts (127.0.0.0/8, ::1, localhost)
 *   unless the caller set `insecure`; every hop, redirects included, is checked.
 * - An Authorization header is attached only while the request URL's origin
 *   equals `credentialOrigin`; a redirect to any other origin drops it.
 * - Only GET and HEAD follow redirects (a streamed body cannot be replayed).
 */
import http, { type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import https from 'node:https';
import tls from 'node:tls';
import { isIP } from 'node:net';
import type { Readable } from 'node:stream';
import { PolicyError, ProtocolError, TransportError } from './errors.js';

export interface AgentPair {
  http: http.Agent;
  https: https.Agent;
}

export interface TransportOptions {
  /** Allow plain HTTP to non-loopback hosts and skip TLS verification. Default false. */
  insecure?: boolean;
  /** Keep-alive agents; one pair per transport by default. */
  agents?: AgentPair;
  userAgent?: string;
  /** Idle socket timeout per request, in ms. Default 60 000. */
  timeoutMs?: number;
  /** Most redirects followed for one GET/HEAD. Default 5. */
  maxRedirects?: number;
  /** Most sockets per host in the default agents. Default 16. */
  maxSockets?: number;
  /**
   * Extra CA certificates (PEM) trusted for HTTPS besides the system's roots, e.g. the
   * self-signed certificate of a private registry. Ignored when `agents` is given.
   */
  ca?: string | Buffer | readonly (string | Buffer)[];
}

/** The system roots plus `extra`, for an https.Agent's `ca` (which otherwise replaces the roots). */
export function trustedCas(extra: NonNullable<TransportOptions['ca']>): (string | Buffer)[] {
  const more = typeof extra === 'string' || Buffer.isBuffer(extra) ? [extra] : [...extra];
  return [...tls.rootCertificates, ...more];
}

export const DEFAULT_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_REDIRECTS = 5;
export const DEFAULT_MAX_SOCKETS = 16;
export const DEFAULT_USER_AGENT = 'ukc-client/0.1';

export interface TransportRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  /** A buffer (sent with Content-Length) or a stream (Content-Length from `bodyLength` when given). */
  body?: Buffer | Readable;
  bodyLength?: number;
  /** The value of Authorization, sent only to `credentialOrigin`. */
  authorization?: string;
  credentialOrigin?: string;
  signal?: AbortSignal;
}

export interface TransportResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: IncomingMessage;
  /** The URL that finally answered (after redirects). */
  url: URL;
}

/** True for 127.0.0.0/8, ::1 and localhost (the hosts decision 7 allows over plain HTTP). */
export function isLoopbackHost(hostname: string): boolean {
  const h = hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname;
  if (h === 'localhost' || h.endsWith('.localhost')) return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || h === '0:0:0:0:0:0:0:1';
  return false;
}

/** Throws PolicyError unless `url` may be contacted with the given `insecure` setting. */
export function checkTransportPolicy(url: URL, insecure: boolean): void {
  if (url.protocol === 'https:') return;
  if (url.protocol !== 'http:') throw new PolicyError(`refusing URL scheme "${url.protocol}" (${redactUrl(url)})`);
  if (!insecure && !isLoopbackHost(url.hostname)) {
    throw new PolicyError(
      `refusing plain HTTP to non-loopback host ${url.host}: use https, or set insecure explicitly`,
    );
  }
}

/** The URL without userinfo and query (query strings may carry signed tokens). */
export function redactUrl(url: URL): string {
  return `${url.protocol}//${url.host}${url.pathname}`;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export class Transport {
  readonly insecure: boolean;
  private readonly agents: AgentPair;
  private readonly userAgent: string;
  private readonly timeoutMs: number;
  private readonly maxRedirects: number;

  constructor(options: TransportOptions = {}) {
    this.insecure = options.insecure ?? false;
    const maxSockets = options.maxSockets ?? DEFAULT_MAX_SOCKETS;
    this.agents = options.agents ?? {
      http: new http.Agent({ keepAlive: true, maxSockets }),
      https: new https.Agent({
        keepAlive: true,
        maxSockets,
        rejectUnauthorized: !this.insecure,
        ...(options.ca !== undefined ? { ca: trustedCas(options.ca) } : {}),
      }),
    };
    this.userAgent = options.userAgent ?? DEFAULT_USER_AGENT;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
  }

  /** Sends one request, following redirects for GET/HEAD. The caller must consume or destroy `body`. */
  async send(req: TransportRequest): Promise<TransportResponse> {
    let url = req.url;
    const followable = req.method === 'GET' || req.method === 'HEAD';
    for (let hop = 0; ; hop++) {
      const res = await this.sendOnce(req, url);
      if (!followable || !REDIRECT_STATUSES.has(res.status)) return res;
      res.body.resume();
      const location = res.headers.location;
      if (!location) throw new ProtocolError(`${req.method} ${redactUrl(url)}: redirect without Location`);
      if (hop >= this.maxRedirects) {
        throw new ProtocolError(`${req.method} ${redactUrl(req.url)}: more than ${this.maxRedirects} redirects`);
      }
      const next = new URL(location, url);
      if (url.protocol === 'https:' && next.protocol === 'http:' && !this.insecure && !isLoopbackHost(next.hostname)) {
        throw new PolicyError(`refusing redirect from https to plain http (${redactUrl(next)})`);
      }
      if (isLoopbackHost(next.hostname) && !isLoopbackHost(url.hostname)) {
        // A remote server must not steer the client at services on this machine (SSRF).
        throw new PolicyError(`refusing redirect from ${url.host} to loopback address ${next.host}`);
      }
      url = next;
    }
  }

  private sendOnce(req: TransportRequest, url: URL): Promise<TransportResponse> {
    checkTransportPolicy(url, this.insecure);
    const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
    if (req.authorization !== undefined && req.credentialOrigin === url.origin) {
      headers.authorization = req.authorization;
    }
    if (Buffer.isBuffer(req.body)) headers['content-length'] = String(req.body.length);
    else if (req.body && req.bodyLength !== undefined) headers['content-length'] = String(req.bodyLength);
    else if (!req.body && (req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH')) {
      headers['content-length'] = '0';
    }
    const isHttps = url.protocol === 'https:';
    const mod = isHttps ? https : http;
    return new Promise<TransportResponse>((resolve, reject) => {
      let settled = false;
      const fail = (err: unknown): void => {
        if (settled) return;
        settled = true;
        reject(
          err instanceof TransportError || err instanceof PolicyError
            ? err
            : new TransportError(`${req.method} ${redactUrl(url)}: ${(err as Error).message ?? String(err)}`, err),
        );
      };
      const cr = mod.request(
        url,
        {
          method: req.method,
          headers,
          agent: isHttps ? this.agents.https : this.agents.http,
          signal: req.signal,
        },
        (res) => {
          settled = true;
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: res, url });
        },
      );
      cr.setTimeout(this.timeoutMs, () => {
        cr.destroy(new TransportError(`${req.method} ${redactUrl(url)}: no activity for ${this.timeoutMs} ms`));
      });
      cr.on('error', fail);
      const body = req.body;
      if (body === undefined) cr.end();
      else if (Buffer.isBuffer(body)) cr.end(body);
      else {
        body.on('error', (err) => {
          cr.destroy(err);
          fail(err);
        });
        body.pipe(cr);
      }
    });
  }

  /** Closes idle keep-alive sockets (for tests and short-lived tools). */
  close(): void {
    this.agents.http.destroy();
    this.agents.https.destroy();
  }
}

/** Reads a response body up to `limit` bytes; throws ProtocolError beyond it. */
export async function readBody(res: IncomingMessage, limit: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    res.destroy();
    throw new ProtocolError(`${what}: body of ${declared} bytes exceeds the limit of ${limit}`);
  }
  const parts: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > limit) {
      res.destroy();
      throw new ProtocolError(`${what}: body exceeds the limit of ${limit} bytes`);
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts, total);
}

/** Discards a response body so the socket can be reused. */
export function drain(res: IncomingMessage): void {
  res.resume();
}
