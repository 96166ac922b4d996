/**
 * `/v1/services` routes: create (`POST`, one object or an array of them),
 * list/get (`GET`, batch body or by uuid), patch and delete in both scopes.
 * Routes validate, call `ServiceGroupService`, and shape.
 */
import { v } from '../../api/index.js';
import { detailsFlag, isTripleUpdate, itemFailed, itemOk, listing, querySelectors, tripleHandlers, type Route, type RouteContext, type UpdateKind } from '../../api/index.js';
import { perItemRoutes, type Collection } from './crud-routes.js';
import { createServiceSchema, patchServiceShape, type PatchServiceRequest, type ServiceGroupService, type ServiceLimits } from './service.js';
import type { ServiceGroupRecord } from './store.js';

/** Service groups answer under `data.service_groups` (the contract; the older dialect said `services`). */
const SERVICE_GROUPS = 'service_groups';

/** The contract's mutable service-group properties (MutableServiceGroupProperty). */
const SERVICE_UPDATE_PROPS = ['services', 'domains', 'soft_limit', 'hard_limit', 'autokill'] as const;
/** Those a node changes (autokill is EOPNOTSUPP); domains only by set (their request and answer forms differ). */
const SERVICE_UPDATE_KINDS: Record<string, UpdateKind> = { services: 'list', domains: 'value', soft_limit: 'value', hard_limit: 'value' };

export function serviceRoutes(service: ServiceGroupService, limits: ServiceLimits & { maxBatchItems: number }): Route[] {
  const createOne = createServiceSchema(limits);
  const createMany = v.array(createOne, { minItems: 1, maxItems: limits.maxBatchItems });
  const collection: Collection<ServiceGroupRecord> = {
    name: 'services',
    key: SERVICE_GROUPS,
    maxBatchItems: limits.maxBatchItems,
    find: (ctx, sel, action) => service.findVisible(ctx.principal, sel, action),
  };
  const get = perItemRoutes(collection, 'GET', 'read', '', {}, (ctx, g) => service.present(ctx.principal, g, detailsFlag(ctx.query)));
  const patchFields = v.object(patchServiceShape(limits));
  const apply = async (ctx: RouteContext, g: ServiceGroupRecord, fields: PatchServiceRequest): Promise<Record<string, unknown>> =>
    service.present(ctx.principal, await service.patch(ctx.principal, g, fields), true);
  // The older dialect (the fields themselves) and the contract's {prop, op, value} triples.
  const patch = perItemRoutes(collection, 'PATCH', 'write', '', patchServiceShape(limits), apply);
  const triples = tripleHandlers<ServiceGroupRecord>({
    props: SERVICE_UPDATE_PROPS,
    kinds: SERVICE_UPDATE_KINDS,
    maxBatchItems: limits.maxBatchItems,
    find: (ctx, sel) => service.findVisible(ctx.principal, sel, 'write'),
    current: (g) => ({ services: g.services, soft_limit: g.softLimit ?? undefined, hard_limit: g.hardLimit ?? undefined }),
    apply: (ctx, g, fields) => apply(ctx, g, patchFields.parse(fields)),
  });
  return [
    {
      method: 'POST',
      pattern: '/v1/services',
      collection: SERVICE_GROUPS,
      async handler(ctx) {
        const many = Array.isArray(ctx.body);
        const reqs = many ? createMany.parse(ctx.body) : [createOne.parse(ctx.body)];
        const items = [];
        // One at a time: generated names and domains are checked against what came before.
        for (const req of reqs) {
          try {
            items.push(itemOk(service.present(ctx.principal, await service.create(ctx.principal, req), true)));
          } catch (err) {
            items.push(itemFailed(err, req.name !== undefined ? { name: req.name } : undefined));
          }
        }
        return { items };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/services',
      collection: SERVICE_GROUPS,
      async handler(ctx) {
        if (ctx.body === undefined && querySelectors(ctx.query, limits.maxBatchItems) === undefined) {
          const details = detailsFlag(ctx.query);
          return { items: listing(service.listVisible(ctx.principal), ctx.query).map((g) => itemOk(service.present(ctx.principal, g, details))) };
        }
        return get[0]!.handler(ctx);
      },
    },
    get[1]!,
    ...patch.map((route): Route => ({ ...route, handler: (ctx) => (isTripleUpdate(ctx.body) ? (route.pattern.endsWith('{uuid}') ? triples.single(ctx) : triples.batch(ctx)) : route.handler(ctx)) })),
    ...perItemRoutes(collection, 'DELETE', 'write', '', {}, (_ctx, g) => service.remove(g)),
  ];
}
