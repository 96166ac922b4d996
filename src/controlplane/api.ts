/**
 * The control plane's REST API v1, declared as routes on src/api (the same
 * framework, envelope, errno table and dialects as the node's API):
 *
 *   GET    /v1/healthz                        no auth
 *   GET    /v1/auth                           who the token belongs to (SDK shape, plus the
 *                                             account's role, scope and quotas under data.auth)
 *   POST   /v1/auth/signin, /v1/auth/check    not on a self-hosted platform (tokens come from
 *                                             `ukcd token create`)
 *   GET    /v1/images?details=&namespace=     central images visible to the caller
 *   DELETE /v1/images     [{name}]            remove images (all tags, or one with :tag)
 *   GET    /v1/metros                         metros: uuid, name, iata_code, country and the
 *                                             endpoint the SDK's discovery calls
 *   GET    /v1/nodes[/{uuid}]                 nodes (root; others see none)
 *   POST   /v1/nodes      {name, metro, api, registry?}   register an existing node (root)
 *   PUT    /v1/nodes/{uuid}/health {healthy, instances?}  report (root)
 *   DELETE /v1/nodes[/{uuid}]                 forget a node (root)
 *   /v1/nodes/providers/..., activate, deactivate: cloud provisioning and licences, not
 *                                             on a self-hosted platform (EOPNOTSUPP)
 *
 * Every request but healthz needs `Authorization: Bearer <API token>`.
 */
import {
  ApiError,
  createRouter,
  detailsFlag,
  Errno,
  itemFailed,
  itemOk,
  nameUuid,
  notSupported,
  page,
  querySelectors,
  selectorFromPath,
  type ApiLogger,
  type Route,
  type RouteContext,
  type Selector,
  unsupportedRoute,
  v,
} from '../api/index.js';
import type { AccountPrincipal, AccountQuotas, PlatformAuthenticator, Policy } from '../auth/index.js';
import { CentralImages, ImageNameError } from './images.js';
import { NodeDirectory, NodeDirectoryError, type NodeRecord } from './nodes.js';

export interface ControlPlaneApiOptions {
  images: CentralImages;
  nodes: NodeDirectory;
  authenticator: PlatformAuthenticator;
  policy: Policy;
  /** An account's quotas, answered by `GET /v1/auth` (nodes that check tokens here enforce them). */
  quotasOf?: (account: string) => AccountQuotas | undefined;
  /** The registry host accounts push to (`GET /v1/auth`'s `registry`). */
  registry: string;
  /** Largest request body in bytes. */
  maxBodyBytes: number;
  /** Items in one batch body. */
  maxBatchItems: number;
  logger?: ApiLogger;
}

/** The contract's NodeState for ours: a self-hosted node is `ready`, `error` (said so) or in `maintenance` (silent). */
const NODE_STATE = { healthy: 'ready', unhealthy: 'error', offline: 'maintenance' } as const;

/** ISO 3166 "unknown country": a self-hosted metro is not placed anywhere we know of. */
const UNKNOWN_COUNTRY = 'ZZ';

function domainError(err: unknown): ApiError | undefined {
  if (err instanceof ImageNameError) return new ApiError(Errno.EINVAL, err.message);
  if (err instanceof NodeDirectoryError) {
    if (err.kind === 'not-found') return new ApiError(Errno.ENOENT, err.message);
    if (err.kind === 'full') return new ApiError(Errno.ENOSPC, err.message);
    return new ApiError(Errno.EINVAL, err.message);
  }
  return undefined;
}

export function controlPlaneRoutes(options: ControlPlaneApiOptions): Route[] {
  const { images, nodes, policy } = options;

  const presentNode = (n: NodeRecord): Record<string, unknown> => {
    const state = nodes.stateOf(n);
    return {
      uuid: n.uuid,
      name: n.name,
      metro: n.metro,
      created_at: new Date(n.registeredAt).toISOString(),
      updated_at: new Date(n.lastSeenAt).toISOString(),
      state: NODE_STATE[state],
      state_message: state,
      api_endpoint: n.api,
      // What a self-hosted node does not report (yet): zero, not a guess.
      vcpus: 0,
      memory_mib: 0,
      uptime_seconds: Math.max(0, Math.round((n.lastSeenAt - n.registeredAt) / 1000)),
      delete_lock: false,
      // The older shape, kept for ukc's own clients.
      api: n.api,
      ...(n.registry !== null ? { registry: n.registry } : {}),
      registered_at: new Date(n.registeredAt).toISOString(),
      last_seen_at: new Date(n.lastSeenAt).toISOString(),
      ...(n.instances !== null ? { instances: n.instances } : {}),
    };
  };

  const requireRoot = (p: AccountPrincipal): void => {
    if (p.role !== 'root') throw new ApiError(Errno.EACCES, 'only the platform operator (root) may manage nodes');
  };

  /** The nodes a request selects (query or body, both dialects); every node without selectors. */
  const selectedNodes = (ctx: RouteContext): { sel: Selector; node?: NodeRecord }[] => {
    const bodySel = ctx.body === undefined ? undefined : v.array(v.selector({}), { maxItems: options.maxBatchItems }).parse(ctx.body);
    const sels = querySelectors(ctx.query, options.maxBatchItems) ?? bodySel;
    if (sels === undefined) return nodes.list().map((n) => ({ sel: { uuid: n.uuid }, node: n }));
    return sels.map((sel) => {
      const node = nodes.list().find((n) => (sel.uuid !== undefined ? n.uuid === sel.uuid : n.name === sel.name));
      return node === undefined ? { sel } : { sel, node };
    });
  };

  const unsupported = (method: Route['method'], pattern: string, collection: string, what: string): Route => unsupportedRoute(method, pattern, what, collection);
  const selfHosted = 'not supported on a self-hosted platform';

  const registerSchema = v.object({
    name: v.string({ minLength: 1, maxLength: 512 }),
    metro: v.string({ minLength: 1, maxLength: 512 }),
    api: v.string({ minLength: 1, maxLength: 512 }),
    registry: v.optional(v.string({ minLength: 1, maxLength: 512 })),
  });
  const healthSchema = v.object({ healthy: v.bool(), instances: v.optional(v.int({ min: 0 })) });

  return [
    { method: 'GET', pattern: '/v1/healthz', anonymous: true, handler: async () => ({ items: [] }) },
    {
      method: 'GET',
      pattern: '/v1/auth',
      async handler(ctx) {
        const p = ctx.principal;
        const q = options.quotasOf?.(p.name);
        const quotas = q === undefined ? {} : { quotas: { instances: q.maxInstances, live_memory_mb: q.maxLiveMemoryMb, services: q.maxServices } };
        return {
          items: [],
          data: {
            organization_name: p.name,
            organization_display_name: p.name,
            organization_uuid: nameUuid('account', p.name),
            registry: options.registry,
            // ukc's own fields: nodes that check tokens here read the role, scope and quotas.
            auth: [{ status: 'success', account: p.name, role: p.role, token_scope: p.tokenScope, ...quotas }],
          },
        };
      },
    },
    unsupported('POST', '/v1/auth/signin', 'auth', `sign-in requests are ${selfHosted}: create an API token with \`ukcd token create\``),
    unsupported('POST', '/v1/auth/check', 'auth', `sign-in requests are ${selfHosted}: create an API token with \`ukcd token create\``),
    {
      method: 'GET',
      pattern: '/v1/images',
      collection: 'images',
      async handler(ctx) {
        if (ctx.body !== undefined) v.object({}).parse(ctx.body);
        const details = detailsFlag(ctx.query);
        const namespace = ctx.query.get('namespace') ?? undefined;
        if (namespace !== undefined && !/^[a-z0-9][a-z0-9._-]{0,62}$/.test(namespace)) throw new ApiError(Errno.EINVAL, 'invalid namespace');
        const listed = await images.list(namespace === undefined ? {} : { namespace });
        const visible = listed.filter((img) => policy.visible(ctx.principal, { kind: 'repository', name: img.repository }));
        return {
          items: visible.map((img) =>
            itemOk(
              details
                ? { name: img.name, tags: img.tags.map((t) => ({ name: t.name, digest: t.digest, size: t.size, push_time: new Date(t.pushedAt).toISOString() })) }
                : { name: img.name },
            ),
          ),
        };
      },
    },
    {
      method: 'DELETE',
      pattern: '/v1/images',
      collection: 'images',
      async handler(ctx) {
        const body = v.array(v.object({ name: v.string({ minLength: 1, maxLength: 512 }) }), { maxItems: options.maxBatchItems }).parse(ctx.body);
        if (body.length === 0) throw new ApiError(Errno.EINVAL, `body must be a list of 1 to ${options.maxBatchItems} {"name": ...} items`);
        const items = [];
        for (const { name } of body) {
          try {
            const { repository, tag } = images.parseName(name);
            // Invisible and missing answer the same (tenant isolation).
            if (!policy.visible(ctx.principal, { kind: 'repository', name: repository })) throw new ApiError(Errno.ENOENT, `image ${name} not found`);
            if (!policy.authorize(ctx.principal, 'delete', { kind: 'repository', name: repository }).allow) throw new ApiError(Errno.EACCES, `may not delete ${name}`);
            const removed = await images.remove(repository, tag);
            if (removed.length === 0) throw new ApiError(Errno.ENOENT, `image ${name} not found`);
            items.push(itemOk({ name: images.nameOf(repository), tags: removed }));
          } catch (err) {
            items.push(itemFailed(domainError(err) ?? err, { name }));
          }
        }
        return { items };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/metros',
      collection: 'metros',
      async handler() {
        return {
          items: nodes.metros().map((m) =>
            itemOk({
              uuid: nameUuid('metro', m.name),
              name: m.name,
              iata_code: m.name,
              country: UNKNOWN_COUNTRY,
              // The SDK's discovery uses an http(s) endpoint verbatim: a self-hosted metro is its node's API.
              endpoint: m.api ?? '',
              ...(m.api !== null ? { api: m.api } : {}),
              ...(m.registry !== null ? { registry: m.registry } : {}),
              nodes: m.nodes,
              healthy_nodes: m.healthyNodes,
            }),
          ),
        };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/nodes',
      collection: 'nodes',
      async handler(ctx) {
        // Nodes are the operator's business: another account sees none, as if there were none.
        if (ctx.principal.role !== 'root') return { items: [], data: { nodes: [], total_count: 0 } };
        const all = nodes.list();
        const listed = page(all, ctx.query);
        return { items: [], data: { nodes: listed.map((n) => ({ status: 'success', ...presentNode(n) })), total_count: all.length } };
      },
    },
    {
      method: 'POST',
      pattern: '/v1/nodes',
      collection: 'nodes',
      async handler(ctx) {
        const body = ctx.body as Record<string, unknown> | undefined;
        // The contract's POST /v1/nodes provisions a cloud machine; ours registers a running node.
        if (typeof body === 'object' && body !== null && ('ssh_keys' in body || 'cloudprovider' in body)) {
          throw notSupported(`cloud-provider provisioning is ${selfHosted}: register a running node with {name, metro, api, registry?}`);
        }
        requireRoot(ctx.principal);
        const req = registerSchema.parse(ctx.body);
        return { items: [itemOk(presentNode(nodes.register(req)))] };
      },
    },
    {
      method: 'DELETE',
      pattern: '/v1/nodes',
      collection: 'nodes',
      async handler(ctx) {
        requireRoot(ctx.principal);
        if (ctx.body === undefined && querySelectors(ctx.query, options.maxBatchItems) === undefined) throw new ApiError(Errno.EINVAL, 'name the nodes to delete');
        return {
          items: selectedNodes(ctx).map(({ sel, node }) => {
            if (node === undefined) return itemFailed(new ApiError(Errno.ENOENT, 'no such node'), sel);
            return itemOk(presentNode(nodes.remove(node.uuid)));
          }),
        };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/nodes/{uuid}',
      collection: 'nodes',
      async handler(ctx) {
        if (ctx.principal.role !== 'root') throw new ApiError(Errno.ENOENT, 'no such node');
        return { items: [itemOk(presentNode(nodeOf(nodes, ctx.params.uuid ?? '')))] };
      },
    },
    {
      method: 'DELETE',
      pattern: '/v1/nodes/{uuid}',
      collection: 'nodes',
      async handler(ctx) {
        requireRoot(ctx.principal);
        return { items: [itemOk(presentNode(nodes.remove(nodeOf(nodes, ctx.params.uuid ?? '').uuid)))] };
      },
    },
    {
      method: 'PUT',
      pattern: '/v1/nodes/{uuid}/health',
      collection: 'nodes',
      async handler(ctx) {
        requireRoot(ctx.principal);
        const rec = healthSchema.parse(ctx.body);
        const n = nodes.reportHealth(ctx.params.uuid ?? '', { healthy: rec.healthy, ...(rec.instances !== undefined ? { instances: rec.instances } : {}) });
        return { items: [itemOk(presentNode(n))] };
      },
    },
    unsupported('POST', '/v1/nodes/activate', 'nodes', `node licences are ${selfHosted}: a node joins by registering (POST /v1/nodes)`),
    unsupported('POST', '/v1/nodes/deactivate', 'nodes', `node licences are ${selfHosted}: remove a node with DELETE /v1/nodes/{uuid}`),
    unsupported('GET', '/v1/nodes/providers/{cloudprovider}/types', 'machine_types', `cloud-provider provisioning is ${selfHosted}`),
    unsupported('GET', '/v1/nodes/providers/{cloudprovider}/regions', 'regions', `cloud-provider provisioning is ${selfHosted}`),
    unsupported('PATCH', '/v1/nodes', 'nodes', `changing a node's properties is not supported yet: register it again (POST /v1/nodes)`),
    unsupported('PATCH', '/v1/nodes/{uuid}', 'nodes', `changing a node's properties is not supported yet: register it again (POST /v1/nodes)`),
    unsupported('GET', '/v1/nodes/wait', 'nodes', 'waiting for node states is not supported yet: poll GET /v1/nodes'),
    unsupported('GET', '/v1/nodes/{uuid}/wait', 'nodes', 'waiting for node states is not supported yet: poll GET /v1/nodes/{uuid}'),
  ];
}

function nodeOf(nodes: NodeDirectory, segment: string): NodeRecord {
  const sel = selectorFromPath(segment);
  const found = nodes.list().find((n) => (sel.uuid !== undefined ? n.uuid === sel.uuid : n.name === sel.name));
  if (found === undefined) throw new ApiError(Errno.ENOENT, 'no such node');
  return found;
}

export function createControlPlaneApi(options: ControlPlaneApiOptions): ReturnType<typeof createRouter> {
  return createRouter({
    routes: controlPlaneRoutes(options),
    authenticate: (headers, peer) => options.authenticator.authenticate({ headers, ...(peer ? { socket: peer } : {}) }),
    maxBodyBytes: options.maxBodyBytes,
    mapError: domainError,
    ...(options.logger ? { logger: options.logger } : {}),
  });
}
