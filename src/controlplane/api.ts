/**
 * The control plane's REST API v1, in Unikraft Cloud's envelope
 * (`status`, `message`, `errors`, `data.<collection>`, `op_time_us`):
 *
 *   GET    /v1/healthz                       no auth
 *   GET    /v1/auth                          who the token belongs to, and its account's quotas
 *   GET    /v1/images?details=&namespace=    central images visible to the caller
 *   DELETE /v1/images     [{name}]           remove images (all tags, or one with :tag)
 *   GET    /v1/metros                        metros and their API addresses
 *   GET    /v1/nodes[/{uuid}]                nodes and their state
 *   POST   /v1/nodes      {name, metro, api, registry?}   register (root)
 *   PUT    /v1/nodes/{uuid}/health {healthy, instances?}  report (root)
 *   DELETE /v1/nodes/{uuid}                  forget a node (root)
 *
 * Every request but healthz needs `Authorization: Bearer <API token>`. Bodies
 * are size-capped and parsed strictly (unknown fields are refused). Errors are
 * mapped to an HTTP status and errno in one place (`failure`); anything
 * unexpected is a 500 without its message.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { AuthError, AuthInputError, type AccountPrincipal, type AccountQuotas, type PlatformAuthenticator, type Policy } from '../auth/index.js';
import { CentralImages, ImageNameError } from './images.js';
import { NodeDirectory, NodeDirectoryError, type NodeRecord } from './nodes.js';

export interface ControlPlaneApiOptions {
  images: CentralImages;
  nodes: NodeDirectory;
  authenticator: PlatformAuthenticator;
  policy: Policy;
  /** An account's quotas, answered by `GET /v1/auth` (nodes that check tokens here enforce them). */
  quotasOf?: (account: string) => AccountQuotas | undefined;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
  /** Items in one batch body. */
  maxBatchItems: number;
  logError?: (err: unknown) => void;
}

const ENOENT = 2;
const EACCES = 13;
const EINVAL = 22;
const ENOSPC = 28;
const EIO = 5;
const EBUSY = 16;

class ApiFailure extends Error {
  constructor(
    readonly httpStatus: number,
    readonly errno: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

type Item = { ok: true; fields: Record<string, unknown> } | { ok: false; failure: ApiFailure; ident?: Record<string, string> };

function failure(err: unknown, log?: (e: unknown) => void): ApiFailure {
  if (err instanceof ApiFailure) return err;
  if (err instanceof AuthError) {
    const headers: Record<string, string> = {};
    if (err.challenge) headers['www-authenticate'] = err.challenge;
    if (err.retryAfterSeconds) headers['retry-after'] = String(err.retryAfterSeconds);
    return new ApiFailure(err.status, err.code === 'TOOMANYREQUESTS' ? EBUSY : EACCES, err.message, headers);
  }
  if (err instanceof AuthInputError) return new ApiFailure(401, EACCES, err.message);
  if (err instanceof ImageNameError) return new ApiFailure(400, EINVAL, err.message);
  if (err instanceof NodeDirectoryError) {
    if (err.kind === 'not-found') return new ApiFailure(404, ENOENT, err.message);
    if (err.kind === 'full') return new ApiFailure(507, ENOSPC, err.message);
    return new ApiFailure(400, EINVAL, err.message);
  }
  log?.(err);
  return new ApiFailure(500, EIO, 'internal error');
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function envelope(started: number, collection: string, items: Item[]): { status: number; body: Record<string, unknown> } {
  const data: Record<string, unknown>[] = [];
  const errors: Record<string, unknown>[] = [];
  for (const item of items) {
    if (item.ok) data.push({ status: 'success', ...item.fields });
    else {
      const e = { message: item.failure.message, error: item.failure.errno };
      data.push({ status: 'error', ...item.ident, ...e });
      errors.push({ status: item.failure.httpStatus, ...item.ident, ...e });
    }
  }
  const failed = errors.length;
  const status = failed === 0 ? 'success' : failed === items.length ? 'error' : 'partial_success';
  const firstFailed = items.find((i): i is Extract<Item, { ok: false }> => !i.ok);
  const body: Record<string, unknown> = { status };
  if (status === 'error' && items.length === 1 && firstFailed) body.message = firstFailed.failure.message;
  if (errors.length > 0) body.errors = errors;
  body.data = { [collection]: data };
  body.op_time_us = Math.round((performance.now() - started) * 1000);
  return { status: status === 'error' && firstFailed ? firstFailed.failure.httpStatus : 200, body };
}

function sendFailure(res: ServerResponse, started: number, f: ApiFailure): void {
  send(
    res,
    f.httpStatus,
    { status: 'error', message: f.message, errors: [{ status: f.httpStatus, message: f.message, error: f.errno }], data: {}, op_time_us: Math.round((performance.now() - started) * 1000) },
    f.headers,
  );
}

async function readJson(req: IncomingMessage, max: number): Promise<unknown> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) throw new ApiFailure(413, EINVAL, `request body larger than ${max} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) throw new ApiFailure(413, EINVAL, `request body larger than ${max} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new ApiFailure(400, EINVAL, 'request body is not valid JSON');
  }
}

function objectWith(body: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ApiFailure(400, EINVAL, `${what} must be a JSON object`);
  for (const k of Object.keys(body)) if (!allowed.includes(k)) throw new ApiFailure(400, EINVAL, `${what}: unknown field "${k}"`);
  return body as Record<string, unknown>;
}

function stringField(rec: Record<string, unknown>, key: string, required: boolean): string | undefined {
  const v = rec[key];
  if (v === undefined && !required) return undefined;
  if (typeof v !== 'string' || v.length === 0 || v.length > 512) throw new ApiFailure(400, EINVAL, `"${key}" must be a non-empty string`);
  return v;
}

function queryBool(q: URLSearchParams, key: string, dflt: boolean): boolean {
  const v = q.get(key);
  if (v === null) return dflt;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new ApiFailure(400, EINVAL, `query "${key}" must be true or false`);
}

export function createControlPlaneApi(options: ControlPlaneApiOptions): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  const { images, nodes, policy } = options;

  const presentNode = (n: NodeRecord): Record<string, unknown> => ({
    uuid: n.uuid,
    name: n.name,
    metro: n.metro,
    state: nodes.stateOf(n),
    api: n.api,
    ...(n.registry !== null ? { registry: n.registry } : {}),
    registered_at: new Date(n.registeredAt).toISOString(),
    last_seen_at: new Date(n.lastSeenAt).toISOString(),
    ...(n.instances !== null ? { instances: n.instances } : {}),
  });

  const requireRoot = (p: AccountPrincipal): void => {
    if (p.role !== 'root') throw new ApiFailure(403, EACCES, 'only the platform operator (root) may manage nodes');
  };

  async function route(req: IncomingMessage, principal: AccountPrincipal, url: URL, parts: string[]): Promise<{ collection: string; items: Item[] }> {
    const method = req.method ?? 'GET';
    const body = await readJson(req, options.maxBodyBytes);
    const [, resource, id, action] = parts;
    if (resource === 'auth' && parts.length === 2 && method === 'GET') {
      const q = options.quotasOf?.(principal.name);
      const quotas = q === undefined ? {} : { quotas: { instances: q.maxInstances, live_memory_mb: q.maxLiveMemoryMb, services: q.maxServices } };
      return { collection: 'auth', items: [{ ok: true, fields: { account: principal.name, role: principal.role, token_scope: principal.tokenScope, ...quotas } }] };
    }
    if (resource === 'images' && parts.length === 2) {
      if (method === 'GET') {
        if (body !== undefined) objectWith(body, [], 'body');
        const details = queryBool(url.searchParams, 'details', true);
        const namespace = url.searchParams.get('namespace') ?? undefined;
        if (namespace !== undefined && !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(namespace)) throw new ApiFailure(400, EINVAL, 'invalid namespace');
        const listed = await images.list(namespace === undefined ? {} : { namespace });
        const visible = listed.filter((img) => policy.visible(principal, { kind: 'repository', name: img.repository }));
        return { collection: 'images', items: visible.map((img) => ({ ok: true, fields: details ? { name: img.name, tags: img.tags } : { name: img.name } })) };
      }
      if (method === 'DELETE') {
        if (!Array.isArray(body) || body.length === 0 || body.length > options.maxBatchItems) {
          throw new ApiFailure(400, EINVAL, `body must be a list of 1 to ${options.maxBatchItems} {"name": ...} items`);
        }
        const items: Item[] = [];
        for (const raw of body) {
          const rec = objectWith(raw, ['name'], 'item');
          const name = stringField(rec, 'name', true)!;
          try {
            const { repository, tag } = images.parseName(name);
            // Invisible and missing answer the same (tenant isolation).
            if (!policy.visible(principal, { kind: 'repository', name: repository })) throw new ApiFailure(404, ENOENT, `image ${name} not found`);
            if (!policy.authorize(principal, 'delete', { kind: 'repository', name: repository }).allow) throw new ApiFailure(403, EACCES, `may not delete ${name}`);
            const removed = await images.remove(repository, tag);
            if (removed.length === 0) throw new ApiFailure(404, ENOENT, `image ${name} not found`);
            items.push({ ok: true, fields: { name: images.nameOf(repository), tags: removed } });
          } catch (err) {
            items.push({ ok: false, failure: failure(err, options.logError), ident: { name } });
          }
        }
        return { collection: 'images', items };
      }
    }
    if (resource === 'metros' && parts.length === 2 && method === 'GET') {
      return {
        collection: 'metros',
        items: nodes.metros().map((m) => ({
          ok: true,
          fields: { name: m.name, ...(m.api !== null ? { api: m.api } : {}), ...(m.registry !== null ? { registry: m.registry } : {}), nodes: m.nodes, healthy_nodes: m.healthyNodes },
        })),
      };
    }
    if (resource === 'nodes') {
      if (parts.length === 2 && method === 'GET') {
        if (principal.role !== 'root') return { collection: 'nodes', items: [] };
        return { collection: 'nodes', items: nodes.list().map((n) => ({ ok: true, fields: presentNode(n) })) };
      }
      if (parts.length === 2 && method === 'POST') {
        requireRoot(principal);
        const rec = objectWith(body, ['name', 'metro', 'api', 'registry'], 'body');
        const reg = stringField(rec, 'registry', false);
        const n = nodes.register({
          name: stringField(rec, 'name', true)!,
          metro: stringField(rec, 'metro', true)!,
          api: stringField(rec, 'api', true)!,
          ...(reg !== undefined ? { registry: reg } : {}),
        });
        return { collection: 'nodes', items: [{ ok: true, fields: presentNode(n) }] };
      }
      if (id !== undefined && parts.length === 3 && method === 'GET') {
        if (principal.role !== 'root') throw new ApiFailure(404, ENOENT, 'no such node');
        return { collection: 'nodes', items: [{ ok: true, fields: presentNode(nodes.get(id)) }] };
      }
      if (id !== undefined && parts.length === 3 && method === 'DELETE') {
        requireRoot(principal);
        return { collection: 'nodes', items: [{ ok: true, fields: presentNode(nodes.remove(id)) }] };
      }
      if (id !== undefined && action === 'health' && parts.length === 4 && method === 'PUT') {
        requireRoot(principal);
        const rec = objectWith(body, ['healthy', 'instances'], 'body');
        if (typeof rec.healthy !== 'boolean') throw new ApiFailure(400, EINVAL, '"healthy" must be a boolean');
        const inst = rec.instances;
        if (inst !== undefined && (typeof inst !== 'number' || !Number.isInteger(inst) || inst < 0)) throw new ApiFailure(400, EINVAL, '"instances" must be a non-negative integer');
        const n = nodes.reportHealth(id, { healthy: rec.healthy, ...(inst !== undefined ? { instances: inst } : {}) });
        return { collection: 'nodes', items: [{ ok: true, fields: presentNode(n) }] };
      }
    }
    throw new ApiFailure(404, ENOENT, `no endpoint ${method} ${url.pathname}`);
  }

  return async (req, res) => {
    const started = performance.now();
    try {
      const url = new URL(req.url ?? '/', 'http://controlplane.invalid');
      const parts = url.pathname.split('/').filter((p) => p !== '').map((p) => {
        try {
          return decodeURIComponent(p);
        } catch {
          throw new ApiFailure(400, EINVAL, 'malformed path');
        }
      });
      if (parts.length === 2 && parts[1] === 'healthz' && req.method === 'GET') {
        send(res, 200, { status: 'success', data: {}, op_time_us: Math.round((performance.now() - started) * 1000) });
        return;
      }
      const principal = options.authenticator.authenticate(req);
      const result = await route(req, principal, url, parts);
      const out = envelope(started, result.collection, result.items);
      send(res, out.status, out.body);
    } catch (err) {
      const f = failure(err, options.logError);
      if (!req.complete) res.setHeader('connection', 'close');
      sendFailure(res, started, f);
    }
  };
}
