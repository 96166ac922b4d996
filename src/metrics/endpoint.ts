/**
 * GET /metrics on a role's listener. Authenticated as the role's own API is:
 * a root account's full-scope API token (`Authorization: Bearer ukc_…`); a role
 * running without authentication (`--no-auth`, a registry without `--auth`)
 * serves it openly. Without credentials 401, with a non-root token 403.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { AccountStore } from '../auth/index.js';
import { setRouteTemplate } from '../log/index.js';
import type { RoleMetrics } from './metrics.js';

export const METRICS_PATH = '/metrics';

export type MetricsAccessAnswer = 'ok' | 'unauthenticated' | 'forbidden';
/** Decides a scrape from its headers; `undefined` serves everyone (no authentication configured). */
export type MetricsAccess = ((headers: IncomingHttpHeaders) => Promise<MetricsAccessAnswer> | MetricsAccessAnswer) | undefined;

/** Root's API tokens from an account store (the control plane, a registry with --auth, a node with --accounts-db). */
export function rootTokenAccess(accounts: AccountStore): NonNullable<MetricsAccess> {
  return (headers) => {
    const m = /^Bearer (\S+)$/i.exec(headers.authorization ?? '');
    if (!m) return 'unauthenticated';
    const found = accounts.authenticateToken(m[1]!);
    if (!found) return 'unauthenticated';
    return found.account.role === 'root' && found.token.scope === 'full' ? 'ok' : 'forbidden';
  };
}

/** True when `req` is for /metrics (the caller then lets `serveMetrics` answer it). */
export function isMetricsRequest(req: IncomingMessage): boolean {
  return (req.url ?? '').split('?')[0] === METRICS_PATH;
}

export async function serveMetrics(req: IncomingMessage, res: ServerResponse, metrics: RoleMetrics, access: MetricsAccess): Promise<void> {
  setRouteTemplate(METRICS_PATH);
  req.resume();
  const plain = (status: number, text: string, headers: Record<string, string> = {}): void => {
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(`${text}\n`);
  };
  if (req.method !== 'GET' && req.method !== 'HEAD') return plain(405, 'GET /metrics only', { allow: 'GET, HEAD' });
  const answer = access === undefined ? 'ok' : await access(req.headers);
  if (answer === 'unauthenticated') return plain(401, "a root account's API token is required", { 'www-authenticate': 'Bearer realm="ukc"' });
  if (answer === 'forbidden') return plain(403, 'only root may read metrics');
  const body = await metrics.text();
  res.writeHead(200, { 'content-type': metrics.contentType, 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
}
