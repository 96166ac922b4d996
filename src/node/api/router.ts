/**
 * The v1 REST framework: a route table, JSON bodies on every verb, a body cap,
 * authentication (objects are checked by the services with src/auth's policy), and the
 * Unikraft Cloud envelope, serialised in exactly one place (`envelope`):
 *
 *   { status: "success" | "error" | "partial_success", message?,
 *     errors?: [{ status: <http>, message, error: <errno>, uuid?, name? }],
 *     data: { <collection>: [ { status, message?, error?, ...fields } ] },
 *     op_time_us }
 *
 * Handlers never see raw HTTP: they get a parsed body and return per-item
 * results. A `NodeError` becomes its errno and status; a `ValidationError`
 * becomes EINVAL/400; anything else is a 500 whose message is not revealed.
 *
 * Two entry points share all of this: `handle(ApiRequest)` for in-process use
 * and tests, and `listener` for node:http (streams the body with the cap).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Errno, NodeError, tooManyRequests, unauthenticated } from '../errors.js';
import type { AccountPrincipal } from '../../auth/index.js';
import type { Authenticator } from '../auth.js';
import { ValidationError } from './validate.js';
import { reportInternalError, setRouteTemplate } from '../../log/index.js';

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

/** One element of `data.<collection>`. */
export type ItemResult =
  | { ok: true; fields: Record<string, unknown> }
  | { ok: false; error: NodeError; ident?: { uuid?: string; name?: string } };

export const itemOk = (fields: Record<string, unknown>): ItemResult => ({ ok: true, fields });
export function itemFailed(err: unknown, ident?: { uuid?: string; name?: string }): ItemResult {
  return { ok: false, error: toNodeError(err), ...(ident ? { ident } : {}) };
}

export interface RouteContext {
  principal: AccountPrincipal;
  params: Record<string, string>;
  query: URLSearchParams;
  /** The parsed JSON body, or undefined when the body was empty. */
  body: unknown;
  signal: AbortSignal;
}

export interface RouteResult {
  items: ItemResult[];
  message?: string;
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
 * The principal of an anonymous route: no account (no account name is empty), not root, and a
 * registry-pull scope, which src/auth's policy refuses every platform object.
 */
export const NOBODY: AccountPrincipal = Object.freeze({ kind: 'account', name: '', role: 'user', tokenScope: 'registry-pull' });

export interface RouterOptions {
  routes: readonly Route[];
  authenticate: Authenticator;
  /** Largest accepted request body in bytes (413 above it). */
  maxBodyBytes: number;
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

/** Maps any thrown value to the client-visible error; unknown errors lose their message. */
export function toNodeError(err: unknown): NodeError {
  if (err instanceof NodeError) return err;
  if (err instanceof ValidationError) return new NodeError(Errno.EINVAL, err.message);
  // The client sees no detail; the cause goes on the request's log line (src/log/http.ts).
  reportInternalError(err);
  return new NodeError(Errno.EIO, internalMessage, 500);
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

  function envelope(started: number, collection: string | undefined, result: RouteResult): ApiResponse {
    const data: Record<string, unknown[]> = {};
    const items: unknown[] = [];
    const errors: Record<string, unknown>[] = [];
    let okCount = 0;
    for (const item of result.items) {
      if (item.ok) {
        okCount++;
        items.push({ status: 'success', ...item.fields });
      } else {
        const e = { message: item.error.message, error: item.error.errno };
        items.push({ status: 'error', ...item.ident, ...e });
        errors.push({ status: item.error.httpStatus, ...item.ident, ...e });
      }
    }
    if (collection !== undefined) data[collection] = items;
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
    return json(httpStatus, body);
  }

  function failure(started: number, collection: string | undefined, err: NodeError): ApiResponse {
    const body: Record<string, unknown> = {
      status: 'error',
      message: err.message,
      errors: [{ status: err.httpStatus, message: err.message, error: err.errno }],
      data: collection === undefined ? {} : { [collection]: [] },
      op_time_us: Math.round((performance.now() - started) * 1000),
    };
    const r = json(err.httpStatus, body);
    Object.assign(r.headers, err.headers);
    return r;
  }

  async function dispatch(req: ApiRequest, bodyTooLarge: boolean): Promise<ApiResponse> {
    const started = performance.now();
    let url: URL;
    try {
      url = new URL(req.url, 'http://node.invalid');
    } catch {
      return failure(started, undefined, new NodeError(Errno.EINVAL, 'malformed request target'));
    }
    const path = splitPath(url.pathname);
    if (path === undefined) return failure(started, undefined, new NodeError(Errno.EINVAL, 'malformed path encoding'));
    let pathMatched = false;
    let found: { route: Route; params: Record<string, string> } | undefined;
    for (const c of compiled) {
      const params = matchRoute(c.segments, path);
      if (!params) continue;
      pathMatched = true;
      if (c.route.method === req.method.toUpperCase()) {
        found = { route: c.route, params };
        break;
      }
    }
    if (!found) {
      return pathMatched
        ? failure(started, undefined, new NodeError(Errno.EINVAL, `method ${req.method} not allowed here`, 405))
        : failure(started, undefined, new NodeError(Errno.ENOENT, `no such endpoint: ${url.pathname}`));
    }
    const { route, params } = found;
    setRouteTemplate(route.pattern);
    try {
      let principal: AccountPrincipal;
      if (route.anonymous === true) principal = NOBODY;
      else {
        const found = await options.authenticate(lowerCaseHeaders(req.headers ?? {}));
        if (!found) throw unauthenticated();
        principal = found;
        const allowed = options.rateLimiter?.take(`account:${principal.name}`);
        if (allowed !== undefined && !allowed.ok) throw tooManyRequests(allowed.retryAfterSeconds);
      }
      if (bodyTooLarge) throw tooLarge(options.maxBodyBytes);
      const body = parseBody(req.body, options.maxBodyBytes);
      const result = await route.handler({
        principal,
        params,
        query: url.searchParams,
        body,
        signal: req.signal ?? new AbortController().signal,
      });
      return envelope(started, route.collection, result);
    } catch (err) {
      return failure(started, route.collection, toNodeError(err));
    }
  }

  return {
    handle: (req) => dispatch(req, false),
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
        const headers: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
        dispatch({ method: req.method ?? 'GET', url: req.url ?? '/', headers, body, signal: ac.signal }, tooBig)
          .then((r) => {
            if (tooBig) r.headers.connection = 'close';
            send(r);
          })
          .catch((err: unknown) => {
            reportInternalError(err);
            send(json(500, { status: 'error', message: internalMessage, data: {}, op_time_us: 0 }));
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

function literalScore(segments: string[]): number {
  // Weighted by position so `/v1/instances/wait` beats `/v1/instances/{uuid}`.
  return segments.reduce((acc, s, i) => acc + (s.startsWith('{') ? 0 : 2 ** (16 - i)), 0);
}

function tooLarge(max: number): NodeError {
  return new NodeError(Errno.EFBIG, `request body larger than ${max} bytes`, 413);
}

function parseBody(raw: string | Uint8Array | undefined, max: number): unknown {
  if (raw === undefined) return undefined;
  const text = typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
  if (Buffer.byteLength(text) > max) throw tooLarge(max);
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new NodeError(Errno.EINVAL, 'request body is not valid JSON');
  }
}

function lowerCaseHeaders(h: Record<string, string | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(h)) out[k.toLowerCase()] = v;
  return out;
}

function json(status: number, body: unknown): ApiResponse {
  return { status, headers: { 'content-type': 'application/json; charset=utf-8' }, body: JSON.stringify(body) };
}

/** Reads the `details` query flag (default true); anything but true/false is EINVAL. */
export function detailsFlag(query: URLSearchParams): boolean {
  const v = query.get('details');
  if (v === null || v === '' || v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new NodeError(Errno.EINVAL, 'query parameter details must be true or false');
}

