/**
 * Updates (PATCH) in the contract's form: `{prop, op, value}` triples, `op` one of set, add,
 * del (reference/unikraft-cloud.md, section 0). The older dialect sends the fields themselves
 * (`{memory_mb: 256}`). Triples are folded here into that older form, given the object's current
 * values, so each API keeps one schema (the fields') and one patch operation:
 *
 *   kind    set                       add                          del
 *   value   the value                 EINVAL                       EINVAL (nothing to unset)
 *   list    the list (one value:      appended                     the values given removed;
 *           a list of one)                                         without a value: all
 *   set     as list                   appended unless present      as list
 *   map     the object                merged in                    the keys given (a string or a
 *                                                                  list); without a value: all
 *
 * A property of the contract that this platform cannot change answers EOPNOTSUPP, never EINVAL:
 * the request is well-formed, the feature is what is missing.
 */
import { ApiError, Errno, notSupported } from './errors.js';
import { itemFailed, itemOk, type ItemResult, type RouteContext, type RouteResult } from './router.js';
import { selectorFromPath } from './query.js';
import * as v from './validate.js';

export const UPDATE_OPS = ['set', 'add', 'del'] as const;
export type UpdateOp = (typeof UPDATE_OPS)[number];
export type UpdateKind = 'value' | 'list' | 'set' | 'map';

export interface UpdateItem {
  id?: string;
  prop: string;
  op: UpdateOp;
  value?: unknown;
}


/** A triple's fields: `prop` one of the contract's mutable properties (`props`), plus `id` (echoed by upstream, ignored here). */
export function updateItemShape(props: readonly string[]) {
  return {
    id: v.optional(v.string({ maxLength: 256 })),
    prop: v.oneOf(props),
    op: v.oneOf(UPDATE_OPS),
    value: v.optional(v.anyValue()),
  };
}

/** True when `body` is in the triple form: an object with `prop`, or a non-empty list of them. */
export function isTripleUpdate(body: unknown): boolean {
  const first = Array.isArray(body) ? (body[0] as unknown) : body;
  return typeof first === 'object' && first !== null && !Array.isArray(first) && Object.hasOwn(first, 'prop');
}

const asList = (value: unknown): unknown[] => (Array.isArray(value) ? value : [value]);

/**
 * The older form of `items` applied in order to `current` (the object's values in that form):
 * only the properties the items name appear in the result. `kinds` lists what this platform can
 * change; any other property is EOPNOTSUPP.
 */
export function foldUpdates(current: Readonly<Record<string, unknown>>, items: readonly UpdateItem[], kinds: Readonly<Record<string, UpdateKind>>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [i, item] of items.entries()) {
    const kind = kinds[item.prop];
    if (kind === undefined) throw notSupported(`property ${item.prop} cannot be changed on this platform`);
    const now = Object.hasOwn(out, item.prop) ? out[item.prop] : current[item.prop];
    const bad = (reason: string): ApiError => new ApiError(Errno.EINVAL, `[${i}] ${item.prop}: ${reason}`);
    if (item.op !== 'del' && item.value === undefined) throw bad(`${item.op} needs a value`);
    switch (kind) {
      case 'value':
        if (item.op !== 'set') throw bad(`only set applies`);
        out[item.prop] = item.value;
        break;
      case 'list':
      case 'set': {
        const was = Array.isArray(now) ? now : [];
        if (item.op === 'set') out[item.prop] = asList(item.value);
        else if (item.op === 'add') {
          const more = asList(item.value);
          const next = [...was];
          for (const x of more) if (kind === 'list' || !next.some((y) => same(x, y))) next.push(x);
          out[item.prop] = next;
        } else if (item.value === undefined) out[item.prop] = [];
        else {
          const gone = asList(item.value);
          out[item.prop] = was.filter((x) => !gone.some((y) => same(x, y)));
        }
        break;
      }
      case 'map': {
        const was = typeof now === 'object' && now !== null && !Array.isArray(now) ? (now as Record<string, unknown>) : {};
        if (item.op === 'del') {
          if (item.value === undefined) out[item.prop] = {};
          else {
            const keys = asList(item.value);
            if (!keys.every((k) => typeof k === 'string')) throw bad('del takes a key or a list of keys');
            out[item.prop] = Object.fromEntries(Object.entries(was).filter(([k]) => !keys.includes(k)));
          }
          break;
        }
        if (typeof item.value !== 'object' || Array.isArray(item.value)) throw bad(`${item.op} takes an object`);
        out[item.prop] = item.op === 'set' ? { ...(item.value as Record<string, unknown>) } : { ...was, ...(item.value as Record<string, unknown>) };
        break;
      }
    }
  }
  return out;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Groups batch triples by the object they select (first appearance order), so each object is patched once. */
export function groupBySelector<T extends { uuid?: string; name?: string }>(items: readonly T[]): { sel: { uuid?: string; name?: string }; items: T[] }[] {
  const groups = new Map<string, { sel: { uuid?: string; name?: string }; items: T[] }>();
  for (const item of items) {
    const key = item.uuid !== undefined ? `uuid:${item.uuid.toLowerCase()}` : `name:${item.name ?? ''}`;
    const sel = item.uuid !== undefined ? { uuid: item.uuid.toLowerCase() } : { name: item.name ?? '' };
    const g = groups.get(key) ?? { sel, items: [] };
    g.items.push(item);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** What the triple form needs of one collection's PATCH. */
export interface UpdateTarget<T> {
  /** The contract's mutable properties (anything else is EINVAL). */
  props: readonly string[];
  /** The ones this platform can change, and how they combine (anything else is EOPNOTSUPP). */
  kinds: Readonly<Record<string, UpdateKind>>;
  maxBatchItems: number;
  /** The object `sel` names, if the caller may change it (throws otherwise). */
  find(ctx: RouteContext, sel: { uuid?: string; name?: string }): T;
  /** Its current values, in the older form. */
  current(target: T): Record<string, unknown>;
  /** Applies the older form (validated by the caller's own fields schema) and answers the item. */
  apply(ctx: RouteContext, target: T, fields: Record<string, unknown>): Promise<Record<string, unknown>>;
}

/**
 * PATCH handlers for the triple form: batch (`[{uuid|name, prop, op, value}]`, one answer per
 * object, all its triples applied at once) and single (`/{uuid}` with one triple or a list).
 */
export function tripleHandlers<T>(t: UpdateTarget<T>): { batch(ctx: RouteContext): Promise<RouteResult>; single(ctx: RouteContext): Promise<RouteResult> } {
  const shape = updateItemShape(t.props);
  const batchSchema = v.array(v.selector(shape), { minItems: 1, maxItems: t.maxBatchItems });
  const one = v.object(shape);
  const many = v.array(one, { minItems: 1, maxItems: t.maxBatchItems });
  const run = async (ctx: RouteContext, sel: { uuid?: string; name?: string }, items: readonly UpdateItem[]): Promise<ItemResult> => {
    try {
      const target = t.find(ctx, sel);
      const fields = await t.apply(ctx, target, foldUpdates(t.current(target), items, t.kinds));
      // The contract echoes a client's `id` (one answer per object here: the first id given).
      const id = items.find((i) => i.id !== undefined)?.id;
      return itemOk(id === undefined ? fields : { ...fields, id });
    } catch (err) {
      return itemFailed(err, sel.uuid !== undefined ? { uuid: sel.uuid } : { name: sel.name ?? '' });
    }
  };
  return {
    async batch(ctx) {
      const groups = groupBySelector(batchSchema.parse(ctx.body));
      return { items: await Promise.all(groups.map((g) => run(ctx, g.sel, g.items))) };
    },
    async single(ctx) {
      const items = Array.isArray(ctx.body) ? many.parse(ctx.body) : [one.parse(ctx.body)];
      return { items: [await run(ctx, selectorFromPath(ctx.params.uuid ?? ''), items)] };
    },
  };
}
