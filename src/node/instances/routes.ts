/**
 * `/v1/instances` routes, both scopes: batch `/v1/instances[/<action>]` with an
 * array of `{uuid}|{name}` items (plus per-action fields), and single
 * `/v1/instances/{uuid}[/<action>]` with an optional object body of the same
 * per-action fields. Routes only validate, call `InstanceService`, and shape.
 *
 * Both dialects (reference/unikraft-cloud.md, section 0): the current one selects
 * with `?uuid=…&name=…` and pages lists with `count`/`from` (src/api/query.ts),
 * sends a wait's and a log read's fields as query parameters, and updates with
 * `{prop, op, value}` triples (src/api/update.ts); the older one sends GET bodies
 * and the fields themselves. Either is accepted, answers are the same.
 */
import { Errno, NodeError } from '../errors.js';
import type { PlatformAction } from '../../auth/index.js';
import { v } from '../../api/index.js';
import {
  batchItems,
  detailsFlag,
  isTripleUpdate,
  itemFailed,
  itemOk,
  listing,
  queryEnum,
  queryInt,
  querySelectors,
  tripleHandlers,
  type ItemResult,
  type Route,
  type RouteContext,
  type RouteResult,
  type UpdateKind,
} from '../../api/index.js';
import { createRequestSchema, execString, type InstanceLimits } from './create.js';
import { FEATURES, INSTANCE_STATES, RESTART_POLICIES, type InstanceRecord, type InstanceState } from './model.js';
import { selectorFromPath, type InstanceService, type Selector } from './service.js';

export interface InstanceRouteLimits extends InstanceLimits {
  /** Items accepted in one batch body. */
  maxBatchItems: number;
  /** Log bytes returned when `limit` is absent. */
  logReadDefaultBytes: number;
  /** Largest `limit` of one log read. */
  logReadMaxBytes: number;
}

export const DEFAULT_ROUTE_LIMITS: Pick<InstanceRouteLimits, 'maxBatchItems' | 'logReadDefaultBytes' | 'logReadMaxBytes'> = {
  maxBatchItems: 1000,
  logReadDefaultBytes: 4096,
  logReadMaxBytes: 1024 * 1024,
};

type ItemOp<S extends v.Shape> = (ctx: RouteContext, record: InstanceRecord, fields: v.InferShape<S>) => Promise<Record<string, unknown>> | Record<string, unknown>;

function identOf(sel: Selector): Selector {
  return sel.uuid !== undefined ? { uuid: sel.uuid } : { name: sel.name ?? '' };
}

/** Builds the handler pair (batch, single) for a per-item operation with extra fields `shape`. */
function perItem<S extends v.Shape>(
  service: InstanceService,
  limits: InstanceRouteLimits,
  action: PlatformAction,
  shape: S,
  op: ItemOp<S>,
  fromQuery?: (query: URLSearchParams) => v.InferShape<S>,
): { batch: (ctx: RouteContext) => Promise<RouteResult>; single: (ctx: RouteContext) => Promise<RouteResult> } {
  const batchSchema = v.array(v.selector(shape), { maxItems: limits.maxBatchItems });
  const singleSchema = v.object(shape);
  const run = async (ctx: RouteContext, sel: Selector, fields: v.InferShape<S>): Promise<ItemResult> => {
    try {
      const record = service.findVisible(ctx.principal, sel, action);
      return itemOk(await op(ctx, record, fields));
    } catch (err) {
      return itemFailed(err, identOf(sel));
    }
  };
  return {
    async batch(ctx) {
      const items = batchItems(ctx.query, ctx.body, batchSchema, limits.maxBatchItems, fromQuery) ?? [];
      return { items: await Promise.all(items.map((item) => run(ctx, item, item))) };
    },
    async single(ctx) {
      // The current dialect sends a single wait's or log read's fields as query parameters too.
      const fields = ctx.body === undefined && fromQuery ? fromQuery(ctx.query) : singleSchema.parse(ctx.body ?? {});
      return { items: [await run(ctx, selectorFromPath(ctx.params.uuid ?? ''), fields)] };
    },
  };
}

/** The contract's mutable instance properties (MutableInstanceProperty). */
const INSTANCE_UPDATE_PROPS = [
  'image', 'args', 'env', 'memory_mb', 'vcpus', 'scale_to_zero', 'tags', 'delete_lock', 'schedules',
  'autokill', 'hostname', 'roms', 'dependencies', 'sched_priority', 'plugins', 'annotations',
] as const;
/** Those a node changes (the others are EOPNOTSUPP). */
const INSTANCE_UPDATE_KINDS: Record<string, UpdateKind> = { memory_mb: 'value', vcpus: 'value', args: 'list', env: 'map', tags: 'set' };

export function instanceRoutes(service: InstanceService, limits: InstanceRouteLimits): Route[] {
  const createSchema = createRequestSchema(limits);
  const routes: Route[] = [];
  const add = (
    method: Route['method'],
    suffix: string,
    pair: { batch: Route['handler']; single: Route['handler'] },
  ): void => {
    routes.push({ method, pattern: `/v1/instances${suffix}`, collection: 'instances', handler: pair.batch });
    routes.push({ method, pattern: `/v1/instances/{uuid}${suffix}`, collection: 'instances', handler: pair.single });
  };

  routes.push({
    method: 'POST',
    pattern: '/v1/instances',
    collection: 'instances',
    async handler(ctx) {
      const req = createSchema.parse(ctx.body);
      const outcome = await service.create(ctx.principal, req);
      return {
        items: outcome.records.map((r) => {
          const waitError = outcome.waitErrors.get(r.uuid);
          return waitError ? itemFailed(waitError, { uuid: r.uuid, name: r.name }) : itemOk(service.present(ctx.principal, r, true));
        }),
      };
    },
  });

  // GET /v1/instances: the body (optional) selects; without it, every visible instance.
  const get = perItem(service, limits, 'read', {}, (ctx, r) => service.present(ctx.principal, r, detailsFlag(ctx.query)));
  routes.push({
    method: 'GET',
    pattern: '/v1/instances',
    collection: 'instances',
    async handler(ctx) {
      const details = detailsFlag(ctx.query);
      if (ctx.body === undefined && querySelectors(ctx.query, limits.maxBatchItems) === undefined) {
        const tags = ctx.query.getAll('tags');
        const all = service.listVisible(ctx.principal).filter((r) => tags.every((t) => r.tags.includes(t)));
        return { items: listing(all, ctx.query).map((r) => itemOk(service.present(ctx.principal, r, details))) };
      }
      return get.batch(ctx);
    },
  });
  routes.push({ method: 'GET', pattern: '/v1/instances/{uuid}', collection: 'instances', handler: get.single });

  const patchShape = {
    memory_mb: v.optional(v.int({ min: limits.minMemoryMb, max: limits.maxMemoryMb })),
    vcpus: v.optional(v.int({ min: 1, max: limits.maxVcpus })),
    args: v.optional(v.array(execString(4096), { maxItems: limits.maxArgs })),
    env: v.optional(
      v.record(execString(32768), {
        maxEntries: limits.maxEnv,
        key: v.string({ pattern: /^[A-Za-z_][A-Za-z0-9_]{0,255}$/, patternHint: 'must be an environment variable name' }),
      }),
    ),
    tags: v.optional(v.array(v.string({ minLength: 1, maxLength: 256 }), { maxItems: limits.maxTags })),
    restart_policy: v.optional(v.oneOf(RESTART_POLICIES)),
    features: v.optional(v.array(v.oneOf(FEATURES), { maxItems: FEATURES.length })),
  };
  const patchFields = v.object(patchShape);
  // The older dialect: the fields themselves, per item.
  const fieldsPatch = perItem(service, limits, 'write', patchShape, (ctx, r, fields) => service.patch(ctx.principal, r, fields));
  // The contract's: {prop, op, value} triples.
  const triplePatch = tripleHandlers<InstanceRecord>({
    props: INSTANCE_UPDATE_PROPS,
    kinds: INSTANCE_UPDATE_KINDS,
    maxBatchItems: limits.maxBatchItems,
    find: (ctx, sel) => service.findVisible(ctx.principal, sel, 'write'),
    current: (r) => ({ memory_mb: r.memoryMb, vcpus: r.vcpus, args: r.args, env: r.env, tags: r.tags }),
    apply: (ctx, r, fields) => service.patch(ctx.principal, r, patchFields.parse(fields)),
  });
  add('PATCH', '', {
    batch: (ctx) => (isTripleUpdate(ctx.body) ? triplePatch.batch(ctx) : fieldsPatch.batch(ctx)),
    single: (ctx) => (isTripleUpdate(ctx.body) ? triplePatch.single(ctx) : fieldsPatch.single(ctx)),
  });
  add('DELETE', '',
    perItem(
      service,
      limits,
      'write',
      // A deleted instance is never retained here, so `dont_retain` changes nothing.
      { dont_retain: v.optional(v.bool()), timeout_s: v.optional(v.anyValue()) },
      (_ctx, r, f) => {
        if (f.timeout_s !== undefined) throw new NodeError(Errno.EOPNOTSUPP, 'timeout_s on delete is not supported on this node');
        return service.remove(r);
      },
    ),
  );
  add('PUT', '/start',
    perItem(
      service,
      limits,
      'write',
      { wait_timeout_ms: v.optional(v.int({ min: -1 })), timeout_s: v.optional(v.int({ min: -1, max: 86_400 })) },
      async (ctx, r, f) => {
        if (f.wait_timeout_ms !== undefined && f.timeout_s !== undefined)
          throw new NodeError(Errno.EINVAL, 'wait_timeout_ms and timeout_s name the same wait: give one');
        const started = await service.start(ctx.principal, r);
        const waitMs = f.wait_timeout_ms ?? (f.timeout_s === undefined ? 0 : f.timeout_s < 0 ? -1 : f.timeout_s * 1000);
        if (waitMs === 0) return started;
        // Started either way; the item fails (ETIMEDOUT) when it is not running in time, as upstream.
        const reached = await service.wait(r, 'running', waitMs, ctx.signal);
        return { ...started, state: reached.state };
      },
    ),
  );
  add('PUT', '/stop',
    perItem(
      service,
      limits,
      'write',
      {
        force: v.optional(v.bool()),
        drain_timeout_ms: v.optional(v.int({ min: 0, max: 3_600_000 })),
        quick: v.optional(v.bool()),
        ifstate: v.optional(v.string({ maxLength: 64 })),
        dump: v.optional(v.bool()),
      },
      (_ctx, r, f) => {
        if (f.quick === true || f.dump === true || f.ifstate !== undefined)
          throw new NodeError(Errno.EOPNOTSUPP, 'quick, ifstate and dump are not supported on this node');
        return service.stop(r, f);
      },
    ),
  );
  add('GET', '/wait',
    perItem(
      service,
      limits,
      'read',
      { state: v.optional(v.oneOf(INSTANCE_STATES)), timeout_ms: v.optional(v.int({ min: -1 })) },
      (ctx, r, f) => service.wait(r, f.state ?? 'running', f.timeout_ms ?? -1, ctx.signal),
      waitQuery,
    ),
  );
  add('GET', '/log',
    perItem(
      service,
      limits,
      'read',
      {
        offset: v.optional(v.int()),
        limit: v.optional(v.int({ min: 0, max: limits.logReadMaxBytes })),
      },
      (_ctx, r, f) => service.log(r, f.offset, f.limit ?? limits.logReadDefaultBytes),
      (query) => ({
        offset: queryInt(query, 'offset'),
        limit: queryInt(query, 'limit', { min: 0, max: limits.logReadMaxBytes }),
      }),
    ),
  );
  add('GET', '/metrics', perItem(service, limits, 'read', {}, (_ctx, r) => service.metrics(r)));
  return routes;
}

/**
 * A wait's fields in the current dialect: `state`, and `timeout_ms` or `timeout_s` (seconds;
 * -1 either way waits as long as it takes).
 */
function waitQuery(query: URLSearchParams): { state: InstanceState | undefined; timeout_ms: number | undefined } {
  const state = queryEnum(query, 'state', INSTANCE_STATES);
  const ms = queryInt(query, 'timeout_ms', { min: -1 });
  const s = queryInt(query, 'timeout_s', { min: -1, max: 86_400 });
  if (ms !== undefined && s !== undefined) throw new NodeError(Errno.EINVAL, 'query parameters timeout_ms and timeout_s exclude each other');
  return { state, timeout_ms: ms ?? (s === undefined ? undefined : s < 0 ? -1 : s * 1000) };
}

/** `GET /v1/healthz`: answers while the controller can reach its database. */
export function healthRoute(check: () => void): Route {
  return {
    method: 'GET',
    pattern: '/v1/healthz',
    async handler() {
      try {
        check();
      } catch {
        throw new NodeError(Errno.EIO, 'node is unhealthy', 503);
      }
      return { items: [] };
    },
  };
}
