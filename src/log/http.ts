/**
 * Request logging for every node:http server the daemons run (registry, node
 * API, control plane): `withRequestLogging(handler, options)` wraps a request
 * listener so that
 *
 *  - each request has an id: the client's `X-Request-Id` when it is
 *    well-formed (REQUEST_ID_PATTERN), else a fresh UUID; it is answered in
 *    the `X-Request-Id` response header;
 *  - code running for the request (any depth, across awaits) finds a child
 *    logger carrying that id with `requestLogger()`, names the route template
 *    with `setRouteTemplate()` and hands an internal error it answers as a 500
 *    to `reportInternalError()` (once the response closed, a line of its own);
 *  - when the response closes, exactly one line is written: `info` for every
 *    answer (4xx included: a client mistake has no stack), `error` with the
 *    recorded cause (`err`: name, message, stack) when the status is 5xx or an
 *    internal error was reported (e.g. one failed item of a batch answered 200).
 *
 * The per-request scope is an AsyncLocalStorage: the logger itself is injected
 * into each server; only the request's own bindings travel implicitly, so deep
 * code (a router's error mapping) needs no logger parameter to report a cause.
 */
import { AsyncLocalStorage, AsyncResource } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Logger } from './logger.js';

/** Accepted client request ids: short, printable, no spaces or quotes (they end up in logs and headers). */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:@/+=-]{1,128}$/;
export const REQUEST_ID_HEADER = 'x-request-id';

/** What one finished request looked like (metrics observe it). */
export interface FinishedRequest {
  method: string;
  /** Route template (`/v1/instances/{uuid}`, `/v2 blob`), never the raw path: bounded label values. */
  route: string;
  status: number;
  durationSeconds: number;
  /** The client went away before the response was complete. */
  aborted: boolean;
}

export interface RequestLoggingOptions {
  logger: Logger;
  /** Route template when the handler names none (default `unmatched`); must return a bounded set of values. */
  routeOf?: (method: string, path: string) => string | undefined;
  /** Called once per finished request (metrics). */
  onFinished?: (request: FinishedRequest) => void;
}

interface RequestScope {
  id: string;
  log: Logger;
  route: string | undefined;
  cause: unknown;
  causes: number;
  /** The request's one line is written (the response closed). */
  written: boolean;
}

const scope = new AsyncLocalStorage<RequestScope>();

/** The id well-formed `presented` carries, else a new one. */
export function requestIdFrom(presented: string | string[] | undefined): string {
  const text = Array.isArray(presented) ? presented[0] : presented;
  return text !== undefined && REQUEST_ID_PATTERN.test(text) ? text : randomUUID();
}

/** The current request's logger (with its `reqId`), or `fallback` outside a request. */
export function requestLogger(fallback: Logger): Logger {
  return scope.getStore()?.log ?? fallback;
}

/** The current request's id, if any. */
export function currentRequestId(): string | undefined {
  return scope.getStore()?.id;
}

/** Names the route template serving the current request (called by routers once matched). */
export function setRouteTemplate(template: string): void {
  const s = scope.getStore();
  if (s) s.route = template;
}

/**
 * An internal error answered to a client (a 500, or a failed item): inside a
 * request it becomes the cause on that request's one log line; outside one
 * (timers, background work) it is logged at once on `fallback`.
 */
export function reportInternalError(err: unknown, fallback?: Logger, message = 'internal error'): void {
  const s = scope.getStore();
  if (s && !s.written) {
    if (s.causes++ === 0) s.cause = err;
    return;
  }
  if (s) {
    // The request's line is out already (the failure came after the response closed): a
    // line of its own, with the request id, rather than a cause nobody ever sees.
    s.log.error({ err }, `${message} after the response closed`);
    return;
  }
  fallback?.error({ err }, message);
}

export function withRequestLogging(handler: RequestListener, options: RequestLoggingOptions): RequestListener {
  const { logger } = options;
  return (req: IncomingMessage, res: ServerResponse) => {
    const started = process.hrtime.bigint();
    const id = requestIdFrom(req.headers[REQUEST_ID_HEADER]);
    res.setHeader('X-Request-Id', id);
    const method = req.method ?? 'GET';
    const path = (req.url ?? '/').split('?')[0]!;
    const s: RequestScope = { id, log: logger.child({ reqId: id }), route: undefined, cause: undefined, causes: 0, written: false };
    res.once('close', () => {
      s.written = true;
      const durationSeconds = Number(process.hrtime.bigint() - started) / 1e9;
      const status = res.statusCode;
      const aborted = !res.writableFinished;
      const route = s.route ?? options.routeOf?.(method, path) ?? 'unmatched';
      const fields: Record<string, unknown> = { method, path, route, status, ms: Math.round(durationSeconds * 1e6) / 1e3 };
      if (aborted) fields.aborted = true;
      if (status >= 500 || s.causes > 0) {
        if (s.causes > 0) fields.err = s.cause;
        if (s.causes > 1) fields.causes = s.causes;
        // A 5xx other than 500 (507 full disk, 503 upstream down) is logged with its cause but is no bug of ours.
        s.log.error(fields, s.causes > 0 && (status === 500 || status < 500) ? 'request failed: internal error' : 'request failed');
      } else {
        s.log.info(fields, 'request');
      }
      options.onFinished?.({ method, route, status, durationSeconds, aborted });
    });
    scope.run(s, () => {
      // The request's stream events ('data', 'end', 'error') are emitted from the socket's
      // context, not this one (measured on Node 20: an 'end' listener saw no scope); bind
      // them here so handlers reading bodies by events still report into this request.
      req.emit = AsyncResource.bind(req.emit, 'ukc-request', req);
      handler(req, res);
    });
  };
}
