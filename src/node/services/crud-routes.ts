/**
 * Route pairs for per-item operations on a collection, in both v1 scopes:
 * batch `/v1/<collection>[/<action>]` with an array of `{uuid}|{name}` items
 * (plus the operation's fields) or `?uuid=…&name=…` query selectors, and single `/v1/<collection>/{uuid}[/<action>]`
 * with an optional object body of the same fields. Shared by services and
 * certificates; every lookup goes through the caller's `find`, which answers an
 * object the principal may not read exactly like a missing one.
 */
import { v } from '../../api/index.js';
import { batchItems, itemFailed, itemOk, selectorFromPath, type Selector, type ItemResult, type Route, type RouteContext } from '../../api/index.js';
import type { PlatformAction } from '../../auth/index.js';

// One selector grammar for the whole v1 API (src/api/query.ts).
export { selectorFromPath, type Selector } from '../../api/index.js';

export interface Collection<T> {
  /** The path segment (`/v1/<name>`). */
  name: string;
  /** The key of `data` the answers go under (default: `name`). */
  key?: string;
  maxBatchItems: number;
  find(ctx: RouteContext, sel: Selector, action: PlatformAction): T;
}

export function perItemRoutes<T, S extends v.Shape>(
  c: Collection<T>,
  method: Route['method'],
  action: PlatformAction,
  suffix: string,
  shape: S,
  op: (ctx: RouteContext, item: T, fields: v.InferShape<S>) => Promise<Record<string, unknown>> | Record<string, unknown>,
): Route[] {
  const batchSchema = v.array(v.selector(shape), { maxItems: c.maxBatchItems });
  const singleSchema = v.object(shape);
  const run = async (ctx: RouteContext, sel: Selector, fields: v.InferShape<S>): Promise<ItemResult> => {
    try {
      return itemOk(await op(ctx, c.find(ctx, sel, action), fields));
    } catch (err) {
      return itemFailed(err, sel.uuid !== undefined ? { uuid: sel.uuid } : { name: sel.name ?? '' });
    }
  };
  const base = { method, collection: c.key ?? c.name };
  return [
    {
      ...base,
      pattern: `/v1/${c.name}${suffix}`,
      async handler(ctx) {
        const items = batchItems(ctx.query, ctx.body, batchSchema, c.maxBatchItems) ?? [];
        return { items: await Promise.all(items.map((item) => run(ctx, item, item))) };
      },
    },
    {
      ...base,
      pattern: `/v1/${c.name}/{uuid}${suffix}`,
      async handler(ctx) {
        const fields = singleSchema.parse(ctx.body ?? {});
        return { items: [await run(ctx, selectorFromPath(ctx.params.uuid ?? ''), fields)] };
      },
    },
  ];
}
