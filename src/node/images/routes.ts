// `/v1/images/...` routes: validate, ask ImageQueries, shape with presentImage.
import { v } from '../../api/index.js';
import { itemOk, type Route } from '../../api/index.js';
import { ImageQueries, presentImage } from './catalog.js';

const filterSchema = v.refine(
  v.object({ tag: v.optional(v.string({ minLength: 1, maxLength: 512 })), digest: v.optional(v.string({ minLength: 1, maxLength: 200 })) }),
  (f) => ((f.tag === undefined) === (f.digest === undefined) ? 'exactly one of tag or digest' : undefined),
);

export function imageRoutes(queries: ImageQueries, maxFilters: number): Route[] {
  const listBody = v.array(filterSchema, { maxItems: maxFilters });
  const common = { collection: 'images' } as const;
  return [
    {
      ...common,
      method: 'GET',
      pattern: '/v1/images/list',
      async handler(ctx) {
        const filters = ctx.body === undefined ? [] : listBody.parse(ctx.body);
        const images = await queries.list(ctx.principal, filters);
        return { items: images.map((img) => itemOk(presentImage(img, ctx.principal))) };
      },
    },
    {
      ...common,
      method: 'GET',
      pattern: '/v1/images/digest/{digest}',
      async handler(ctx) {
        v.object({}).parse(ctx.body ?? {});
        const images = await queries.byDigest(ctx.principal, ctx.params.digest ?? '');
        return { items: images.map((img) => itemOk(presentImage(img, ctx.principal))) };
      },
    },
    {
      ...common,
      method: 'GET',
      pattern: '/v1/images/tag/{tag*}',
      async handler(ctx) {
        v.object({}).parse(ctx.body ?? {});
        const images = await queries.byTag(ctx.principal, ctx.params.tag ?? '');
        return { items: images.map((img) => itemOk(presentImage(img, ctx.principal))) };
      },
    },
  ];
}
