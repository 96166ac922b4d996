/** `/v1/certificates` routes: create (one object or an array), list/get, renew (PUT: new chain and key), delete. */
import { v } from '../../api/index.js';
import { detailsFlag, itemFailed, itemOk, listing, querySelectors, type Route } from '../../api/index.js';
import { perItemRoutes, type Collection } from '../services/crud-routes.js';
import { createCertificateSchema, type CertificateLimits, type CertificateService } from './service.js';
import type { CertificateRecord } from './store.js';

export function certificateRoutes(service: CertificateService, limits: CertificateLimits & { maxBatchItems: number }): Route[] {
  const one = createCertificateSchema(limits);
  const many = v.array(one, { minItems: 1, maxItems: limits.maxBatchItems });
  const collection: Collection<CertificateRecord> = {
    name: 'certificates',
    maxBatchItems: limits.maxBatchItems,
    find: (ctx, sel, action) => service.findVisible(ctx.principal, sel, action),
  };
  const get = perItemRoutes(collection, 'GET', 'read', '', {}, (ctx, c) => service.present(ctx.principal, c, detailsFlag(ctx.query)));
  return [
    {
      method: 'POST',
      pattern: '/v1/certificates',
      collection: 'certificates',
      async handler(ctx) {
        const reqs = Array.isArray(ctx.body) ? many.parse(ctx.body) : [one.parse(ctx.body)];
        return {
          items: reqs.map((req) => {
            try {
              return itemOk(service.present(ctx.principal, service.create(ctx.principal, req), true));
            } catch (err) {
              return itemFailed(err, req.name !== undefined ? { name: req.name } : undefined);
            }
          }),
        };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/certificates',
      collection: 'certificates',
      async handler(ctx) {
        if (ctx.body === undefined && querySelectors(ctx.query, limits.maxBatchItems) === undefined) {
          const details = detailsFlag(ctx.query);
          return { items: listing(service.listVisible(ctx.principal), ctx.query).map((c) => itemOk(service.present(ctx.principal, c, details))) };
        }
        return get[0]!.handler(ctx);
      },
    },
    get[1]!,
    ...perItemRoutes(collection, 'DELETE', 'write', '', {}, (_ctx, c) => service.remove(c)),
    // Renewal: a new chain and key for the same certificate (uuid and name stay).
    ...perItemRoutes(
      collection,
      'PUT',
      'write',
      '',
      { chain: v.string({ minLength: 1, maxLength: limits.maxChainBytes }), pkey: v.string({ minLength: 1, maxLength: limits.maxKeyBytes }) },
      (ctx, c, f) => service.present(ctx.principal, service.update(c, f), true),
    ),
  ];
}
