/**
 * The v1 framework the node and the control plane both declare their routes on
 * (ARCHITECTURE.md decision 9). One module owns:
 *   - routing as data: `{x}` matches one segment, `{x*}` the rest; literal
 *     segments win over parameters (`/v1/instances/wait` before `{uuid}`);
 *   - JSON bodies on every verb (the older dialect sends GET bodies), capped;
 *   - authentication (src/auth's principal), a per-principal request rate;
 *   - the Unikraft Cloud envelope, serialised in exactly one place:
 *
 *       { status: "success" | "error" | "partial_success", message?,
 *         errors?: [{ status: <http>, message, error: <errno>, uuid?, name? }],
 *         data: { <collection>: [ { status, message?, error?, ...fields } ] },
 *         op_time_us }
 *
 *   - the one errno table (errors.ts): an `ApiError` becomes its errno and
 *     status, a `ValidationError` EINVAL/400, src/auth's `AuthError` 401/403/429,
 *     the API's own domain errors whatever its `mapError` says; anything else is
 *     a 500 "internal error", logged with the request id and never revealed; a full
 *     disk is 507 ENOSPC; every 5xx, known or not, is logged with its cause;
 *   - the same answer on both APIs for an unknown path (404 ENOENT), a wrong
 *     method (405 EINVAL with `Allow`) and an oversize body (413 EFBIG).
 * Selectors and paging of both dialects are in query.ts.
 *
 * Handlers never see raw HTTP: they get a parsed body and return per-item
 * results. Two entry points share all of this: `handle(ApiRequest)` for
 * in-process use and tests, and `listener` for node:http (streams the body
 * with the cap).
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { AuthError, AuthInputError, type AccountPrincipal } from '../auth/index.js';
import { ApiError, Errno, insufficientStorage, notSupported, tooManyRequests, unauthenticated } from './errors.js';
import { isStorageFull } from '../util/index.js';
import { ValidationError } from './validate.js';
import { currentRequestId, reportInternalError, requestIdFrom, setRouteTemplate } from '../log/index.js';

/**
 * Resolves request headers to a principal, or undefined when not authenticated (401).
 * May be asynchronous (a node checking tokens with its control plane) and may throw an
 * `ApiError` or src/auth's `AuthError` of its own (503 when the control plane cannot be
 * asked, 429 over a rate).
 */
export type Authenticator = (
  headers: IncomingHttpHeaders,
  peer?: { remoteAddress?: string | undefined },
) => AccountPrincipal | undefined | Promise<AccountPrincipal | undefined>;

/**
 * Where internal errors go outside a logged HTTP request (src/log's `withRequestLogging` puts
 * them on the request's own line, with its id): the shape of pino's `logger.error(obj, msg)`,
 * so the daemons pass their logger as it is. The default writes one JSON line to stderr.
 */
export interface ApiLogger {
  error(fields: Record<string, unknown>, message: string): void;
}

export const stderrLogger: ApiLogger = {
  error(fields, message) {
    const err = fields.err;
    const shown = err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : err;
    process.stderr.write(`${JSON.stringify({ level: 'error', time: new Date().toISOString(), ...fields, err: shown, msg: message })}\n`);
  },
};

export interface ApiRequest {
  method: string;
  /** Path plus optional query, e.g. `/v1/instances?details=false`. */
  url: string;
  headers?: Record<string, string | undefined>;
  body?: string | Uint8Array;
  /** Aborted when the client goes away (long waits stop early). */
  signal?: AbortSignal;
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One element of `data.<collection>`. `cause` is the thrown value, kept so an internal error can be logged. */
export type ItemResult =
  | { ok: true; fields: Record<string, unknown> }
  | { ok: false; error: ApiError; ident?: { uuid?: string; name?: string }; cause?: unknown };

export const itemOk = (fields: Record<string, unknown>): ItemResult => ({ ok: true, fields });
export function itemFailed(err: unknown, ident?: { uuid?: string; name?: string }): ItemResult {
  const error = knownError(err) ?? internalError();
  // Every 5xx is logged with its cause (the thrown value, which may itself carry a `cause`).
  return { ok: false, error, ...(ident ? { ident } : {}), ...(error.httpStatus >= 500 ? { cause: err } : {}) };
}

export interface RouteContext {
  principal: AccountPrincipal;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body, or undefined when the body was empty. */
  body: unknown;
  signal: AbortSignal;
  /** This request's id (echoed as `x-request-id`, named in logs). */
  requestId: string;
}

export interface RouteResult {
  items: ItemResult[];
  message?: string;
  /**
   * `data` is this object instead of `{ <collection>: items }` (answers whose data is one
   * object, such as the control plane's `GET /v1/auth`); `items` must then be empty.
   */
  data?: Record<string, unknown>;
}

export interface Route {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Segments; `{x}` matches one segment, `{x*}` the rest of the path (at the end only). */
  pattern: string;
  /** Key under `data` (absent: `data` is `{}`). */
  collection?: string;
  /**
   * Served without credentials (health checks only). The handler then sees `NOBODY`, a principal
   * that owns nothing and may do nothing; every other route authenticates first (deny by default).
   */
  anonymous?: boolean;
  handler(ctx: RouteContext): Promise<RouteResult>;
}

/**
 * A route of the contract this platform does not offer: answers EOPNOTSUPP (501) in the envelope
 * with `message`, after authentication like any other route, so a client learns "not here" rather
 * than "no such name" (a literal path swallowed by a `{uuid}` route) or "no such endpoint".
 */
export function unsupportedRoute(method: Route['method'], pattern: string, message: string, collection?: string): Route {
  return {
    method,
    pattern,
    ...(collection !== undefined ? { collection } : {}),
    async handler() {
      throw notSupported(message);
    },
  };
}

/**
 * The principal of an anonymous route: no account (no account name is empty), not root, and a
 * registry-pull scope, which src/auth's policy refuses every platform object.
 */
export const NOBODY: AccountPrincipal = Object.freeze({ kind: 'account', name: '', role: 'user', tokenScope: 'registry-pull' });

export interface RouterOptions {
  routes: readonly Route[];
  authenticate: Authenticator;
  /** Largest accepted request body in bytes (413 above it). */
  maxBodyBytes: number;
  /** Internal errors are logged here (default: one JSON line on stderr). */
  logger?: ApiLogger;
  /** The API's own domain errors as client errors; undefined for anything it does not know. */
  mapError?: (err: unknown) => ApiError | undefined;
  /**
   * Per-principal request rate, asked after authentication with the account name; an answer
   * `{ ok: false }` becomes 429 with `Retry-After`. Absent: no limit.
   */
  rateLimiter?: PrincipalRateLimiter;
}

/** What the router needs of a limiter (src/auth's RequestRateLimiter fits). */
export interface PrincipalRateLimiter {
  take(key: string): { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };
}

const internalMessage = 'internal error';

const internalError = (): ApiError => new ApiError(Errno.EIO, internalMessage, 500);

/** The client-visible error for the framework's own error types and src/auth's; undefined for anything else. */
function knownError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof ValidationError) return new ApiError(Errno.EINVAL, err.message);
  if (err instanceof AuthError) {
    if (err.code === 'UNAUTHORIZED') return unauthenticated(err.message, err.challenge);
    if (err.code === 'TOOMANYREQUESTS') return tooManyRequests(err.retryAfterSeconds ?? 1);
    return new ApiError(Errno.EACCES, err.message);
  }
  if (err instanceof AuthInputError) return unauthenticated(err.message);
  if (isStorageFull(err)) return insufficientStorage('no space left on the storage of this server', err);
  return undefined;
}

/** Maps any thrown value to the client-visible error; unknown errors lose their message. */
export function toApiError(err: unknown): ApiError {
  return knownError(err) ?? internalError();
}

interface CompiledRoute {
  route: Route;
  segments: string[];
}

function splitPath(pathname: string): string[] | undefined {
  const parts = pathname.split('/').filter((s) => s !== '');
  try {
    return parts.map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
}

function matchRoute(segments: string[], path: string[]): Record<string, string> | undefined {
  const params: Record<string, string> = {};
  for (let i = 0; i < segments.length; i++) {
    const seg = segments[i]!;
    if (seg.startsWith('{') && seg.endsWith('*}')) {
      if (i !== segments.length - 1 || path.length <= i) return undefined;
      params[seg.slice(1, -2)] = path.slice(i).join('/');
      return params;
    }
    const part = path[i];
    if (part === undefined) return undefined;
    if (seg.startsWith('{') && seg.endsWith('}')) params[seg.slice(1, -1)] = part;
    else if (seg !== part) return undefined;
  }
  return path.length === segments.length ? params : undefined;
}

export interface Router {
  handle(req: ApiRequest): Promise<ApiResponse>;
  listener(req: IncomingMessage, res: ServerResponse): void;
}

export function createRouter(options: RouterOptions): Router {
  // Literal segments win over parameters: sort so routes with more literals come first.
  const compiled: CompiledRoute[] = options.routes
    .map((route) => ({ route, segments: route.pattern.split('/').filter((s) => s !== '') }))
    .sort((a, b) => literalScore(b.segments) - literalScore(a.segments));
  const logger = options.logger ?? stderrLogger;

  /** Logs an internal error: on the HTTP request's log line when there is one, else through `logger`. */
  function logInternal(err: unknown, req: ApiRequest, requestId: string): void {
    if (currentRequestId() !== undefined) reportInternalError(err);
    else logger.error({ err, requestId, method: req.method, url: req.url }, 'internal error in a v1 request');
  }

  /** The client-visible error; an unknown one is logged (with the request id) and hidden. */
  function classify(err: unknown, req: ApiRequest, requestId: string): ApiError {
    const known = knownError(err) ?? options.mapError?.(err);
    if (known !== undefined) {
      // A 5xx is ours (or the host's) to fix: logged with its cause even when it is a known one.
      if (known.httpStatus >= 500) logInternal(err, req, requestId);
      return known;
    }
    logInternal(err, req, requestId);
    return internalError();
  }

  function envelope(started: number, collection: string | undefined, result: RouteResult, req: ApiRequest, requestId: string): ApiResponse {
    const data: Record<string, unknown> = { ...result.data };
    const items: unknown[] = [];
    const errors: Record<string, unknown>[] = [];
    let okCount = 0;
    for (const item of result.items) {
      if (item.ok) {
        okCount++;
        items.push({ status: 'success', ...item.fields });
      } else {
        if (item.cause !== undefined) logInternal(item.cause, req, requestId);
        const e = { message: item.error.message, error: item.error.errno };
        items.push({ status: 'error', ...item.ident, ...e });
        errors.push({ status: item.error.httpStatus, ...item.ident, ...e });
      }
    }
    if (collection !== undefined && result.data === undefined) data[collection] = items;
    const failed = result.items.length - okCount;
    const status = failed === 0 ? 'success' : okCount === 0 ? 'error' : 'partial_success';
    const first = result.items.find((i): i is Extract<ItemResult, { ok: false }> => !i.ok);
    const httpStatus = status === 'error' && first ? first.error.httpStatus : 200;
    const body: Record<string, unknown> = { status };
    const message = result.message ?? (status === 'error' && first && result.items.length === 1 ? first.error.message : undefined);
    if (message !== undefined) body.message = message;
    if (errors.length > 0) body.errors = errors;
    body.data = data;
    body.op_time_us = Math.round((performance.now() - started) * 1000);
    return json(httpStatus, body, requestId);
  }

  function failure(started: number, collection: string | undefined, err: ApiError, requestId: string): ApiResponse {
    const body: Record<string, unknown> = {
      status: 'error',
      message: err.message,
      errors: [{ status: err.httpStatus, message: err.message, error: err.errno }],
      data: collection === undefined ? {} : { [collection]: [] },
      op_time_us: Math.round((performance.now() - started) * 1000),
    };
    const r = json(err.httpStatus, body, requestId);
    Object.assign(r.headers, err.headers);
    return r;
  }

  async function dispatch(req: ApiRequest, bodyTooLarge: boolean, peer: { remoteAddress?: string | undefined }): Promise<ApiResponse> {
    const started = performance.now();
    const requestId = requestIdOf(req.headers ?? {});
    let url: URL;
    try {
      url = new URL(req.url, 'http://api.invalid');
    } catch {
      return failure(started, undefined, new ApiError(Errno.EINVAL, 'malformed request target'), requestId);
    }
    const path = splitPath(url.pathname);
    if (path === undefined) return failure(started, undefined, new ApiError(Errno.EINVAL, 'malformed path encoding'), requestId);
    const allowed = new Set<string>();
    let found: { route: Route; params: Record<string, string> } | undefined;
    for (const c of compiled) {
      const params = matchRoute(c.segments, path);
      if (!params) continue;
      if (c.route.method === req.method.toUpperCase()) {
        found = { route: c.route, params };
        break;
      }
      allowed.add(c.route.method);
    }
    if (!found) {
      if (allowed.size === 0) return failure(started, undefined, new ApiError(Errno.ENOENT, `no such endpoint: ${url.pathname}`), requestId);
      const err = new ApiError(Errno.EINVAL, `method ${req.method} not allowed on ${url.pathname}`, 405, { allow: [...allowed].sort().join(', ') });
      return failure(started, undefined, err, requestId);
    }
    const { route, params } = found;
    setRouteTemplate(route.pattern);
    try {
      let principal: AccountPrincipal;
      if (route.anonymous === true) principal = NOBODY;
      else {
        const who = await options.authenticate(lowerCaseHeaders(req.headers ?? {}), peer);
        if (!who) throw unauthenticated();
        principal = who;
        const rate = options.rateLimiter?.take(`account:${principal.name}`);
        if (rate !== undefined && !rate.ok) throw tooManyRequests(rate.retryAfterSeconds);
      }
      if (bodyTooLarge) throw tooLarge(options.maxBodyBytes);
      const body = parseBody(req.body, options.maxBodyBytes);
      const result = await route.handler({
        principal,
        params,
        query: url.searchParams,
        body,
        signal: req.signal ?? new AbortController().signal,
        requestId,
      });
      return envelope(started, route.collection, result, req, requestId);
    } catch (err) {
      return failure(started, route.collection, classify(err, req, requestId), requestId);
    }
  }

  return {
    handle: (req) => dispatch(req, false, {}),
    listener(req, res) {
      const ac = new AbortController();
      res.on('close', () => ac.abort());
      const declared = Number(req.headers['content-length'] ?? '0');
      const send = (r: ApiResponse): void => {
        if (res.headersSent) return;
        res.writeHead(r.status, r.headers);
        res.end(r.body);
      };
      const finish = (body: Buffer | undefined, tooBig: boolean): void => {
        dispatch({ method: req.method ?? 'GET', url: req.url ?? '/', headers: headersOf(req), body, signal: ac.signal }, tooBig, { remoteAddress: req.socket.remoteAddress })
          .then((r) => {
            // The rest of an oversize body is not read: the connection cannot be reused.
            if (tooBig) r.headers.connection = 'close';
            send(r);
          })
          .catch((err: unknown) => {
            const requestId = requestIdOf(headersOf(req));
            logInternal(err, { method: req.method ?? 'GET', url: req.url ?? '/' }, requestId);
            send(json(500, { status: 'error', message: internalMessage, data: {}, op_time_us: 0 }, requestId));
          });
      };
      if (Number.isFinite(declared) && declared > options.maxBodyBytes) {
        req.resume();
        finish(undefined, true);
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      let overflow = false;
      req.on('data', (chunk: Buffer) => {
        if (overflow) return;
        size += chunk.length;
        if (size > options.maxBodyBytes) {
          overflow = true;
          chunks.length = 0;
          finish(undefined, true);
          return;
        }
        chunks.push(chunk);
      });
      req.on('end', () => {
        if (!overflow) finish(chunks.length > 0 ? Buffer.concat(chunks) : undefined, false);
      });
      req.on('error', () => ac.abort());
    },
  };
}

/** The logged HTTP request's id (src/log), else the caller's well-formed `x-request-id`, else a new one. */
function requestIdOf(headers: Record<string, string | undefined>): string {
  return currentRequestId() ?? requestIdFrom(headers['x-request-id'] ?? headers['X-Request-Id']);
}

function headersOf(req: IncomingMessage): Record<string, string | undefined> {
  const headers: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
  return headers;
}

function literalScore(segments: string[]): number {
  // Weighted by position so `/v1/instances/wait` beats `/v1/instances/{uuid}`.
  return segments.reduce((acc, s, i) => acc + (s.startsWith('{') ? 0 : 2 ** (16 - i)), 0);
}

function tooLarge(max: number): ApiError {
  return new ApiError(Errno.EFBIG, `request body larger than ${max} bytes`, 413);
}

function parseBody(raw: string | Uint8Array | undefined, max: number): unknown {
  if (raw === undefined) return undefined;
  const text = typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
  if (Buffer.byteLength(text) > max) throw tooLarge(max);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ApiError(Errno.EINVAL, 'request body is not valid JSON');
  }
}

function lowerCaseHeaders(h: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function json(status: number, body: unknown, requestId: string): ApiResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8', 'x-request-id': requestId }, body: JSON.stringify(body) };
}
