/**
 * The node's image routes: validate, ask ImageQueries, shape with presentImage.
 *   GET /v1/images?tag=…&digest=…    the contract's Get Images (filters repeated, any one matches)
 *   GET /v1/images/list  [{tag}|{digest}]   the older dialect's path, filters in a GET body
 *   GET /v1/images/digest/{d}, /v1/images/tag/{t}
 */
import { ApiError, Errno, v } from '../../api/index.js';
import { itemOk, type Route, type RouteContext, type RouteResult } from '../../api/index.js';
import { ImageQueries, presentImage } from './catalog.js';

const filterSchema = v.refine(
  v.object({ tag: v.optional(v.string({ minLength: 1, maxLength: 512 })), digest: v.optional(v.string({ minLength: 1, maxLength: 200 })) }),
  (f) => ((f.tag === undefined) === (f.digest === undefined) ? 'exactly one of tag or digest' : undefined),
);

export function imageRoutes(queries: ImageQueries, maxFilters: number): Route[] {
  const listBody = v.array(filterSchema, { maxItems: maxFilters });
  const common = { collection: 'images' } as const;
  const list = async (ctx: RouteContext): Promise<RouteResult> => {
    const fromQuery = [...ctx.query.getAll('tag').map((tag) => ({ tag })), ...ctx.query.getAll('digest').map((digest) => ({ digest }))];
    if (fromQuery.length > 0 && ctx.body !== undefined) throw new ApiError(Errno.EINVAL, 'filter by query parameters or by the request body, not both');
    const filters = fromQuery.length > 0 ? listBody.parse(fromQuery) : ctx.body === undefined ? [] : listBody.parse(ctx.body);
    const images = await queries.list(ctx.principal, filters);
    return { items: images.map((img) => itemOk(presentImage(img, ctx.principal))) };
  };
  return [
    { ...common, method: 'GET', pattern: '/v1/images', handler: list },
    { ...common, method: 'GET', pattern: '/v1/images/list', handler: list },
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
