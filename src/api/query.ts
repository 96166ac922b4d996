/**
 * The two dialects' request parameters (reference/unikraft-cloud.md, section 0),
 * read in one place:
 *   - selectors: the current dialect sends `?uuid=…&name=…` (repeated) on GET and
 *     DELETE lists, because `fetch` cannot send a GET body; the older one sends a
 *     JSON array of `{uuid}|{name}` in the body. Either is accepted; both at once
 *     is refused (which one would win is not obvious);
 *   - paging (current dialect only): `count` items after the item whose uuid is
 *     `from` (the SDK's cursor is the last uuid of the previous page), or after
 *     the first `offset`; `order` asc|desc by creation time (`sortby=create_time`);
 *   - typed query values (`details`, `timeout_ms`, `state`, …): ill-typed is EINVAL.
 */
import { createHash } from 'node:crypto';
import { ApiError, Errno } from './errors.js';

export interface Selector {
  uuid?: string;
  name?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A `{uuid}` path segment: a UUID selects by uuid, anything else by name (upstream accepts both). */
export function selectorFromPath(segment: string): Selector {
  return UUID.test(segment) ? { uuid: segment.toLowerCase() } : { name: segment };
}

/**
 * A stable UUID for a name (RFC 4122 version 5 layout over SHA-1), for objects that have a name
 * but no stored uuid (accounts as organizations, metros): the same name always answers the same.
 */
export function nameUuid(kind: string, name: string): string {
  const h = createHash('sha1').update(`ukc:${kind}:${name}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20, 32)}`;
}

const MAX_SELECTOR_LENGTH = 128;

/** The query's `uuid` and `name` selectors in order (uuids first), or undefined when there are none. */
export function querySelectors(query: URLSearchParams, maxItems: number): Selector[] | undefined {
  const uuids = query.getAll('uuid');
  const names = query.getAll('name');
  if (uuids.length + names.length === 0) return undefined;
  if (uuids.length + names.length > maxItems) throw new ApiError(Errno.EINVAL, `at most ${maxItems} uuid/name query parameters`);
  for (const v of [...uuids, ...names]) {
    if (v.length === 0 || v.length > MAX_SELECTOR_LENGTH) throw new ApiError(Errno.EINVAL, `uuid and name must be 1 to ${MAX_SELECTOR_LENGTH} characters`);
  }
  return [...uuids.map((uuid) => ({ uuid: uuid.toLowerCase() })), ...names.map((name) => ({ name }))];
}

/** Refuses selectors in both the query and the body. */
export function oneDialect(query: Selector[] | undefined, body: unknown): void {
  if (query !== undefined && body !== undefined) throw new ApiError(Errno.EINVAL, 'select by query parameters or by the request body, not both');
}

export interface IntRules {
  min?: number;
  max?: number;
}

/** An integer query parameter, or undefined when absent. */
export function queryInt(query: URLSearchParams, name: string, rules: IntRules = {}): number | undefined {
  const text = query.get(name);
  if (text === null || text === '') return undefined;
  if (!/^-?[0-9]{1,16}$/.test(text)) throw new ApiError(Errno.EINVAL, `query parameter ${name} must be an integer`);
  const n = Number(text);
  if (rules.min !== undefined && n < rules.min) throw new ApiError(Errno.EINVAL, `query parameter ${name} must be at least ${rules.min}`);
  if (rules.max !== undefined && n > rules.max) throw new ApiError(Errno.EINVAL, `query parameter ${name} must be at most ${rules.max}`);
  return n;
}

/** A boolean query parameter (`true`/`false`/`1`/`0`), or `dflt` when absent. */
export function queryBool(query: URLSearchParams, name: string, dflt: boolean): boolean {
  const v = query.get(name);
  if (v === null || v === '') return dflt;
  if (v === 'true' || v === '1') return true;
  if (v === 'false' || v === '0') return false;
  throw new ApiError(Errno.EINVAL, `query parameter ${name} must be true or false`);
}

/** One of `values`, or undefined when absent. */
export function queryEnum<const T extends readonly string[]>(query: URLSearchParams, name: string, values: T): T[number] | undefined {
  const v = query.get(name);
  if (v === null || v === '') return undefined;
  if (!values.includes(v)) throw new ApiError(Errno.EINVAL, `query parameter ${name} must be one of ${values.join(', ')}`);
  return v;
}

/** Reads the `details` query flag (default true). */
export function detailsFlag(query: URLSearchParams): boolean {
  return queryBool(query, 'details', true);
}

/** Largest page the API answers at once. */
export const MAX_PAGE = 1000;

/**
 * One page of `items` (in their listing order): after the item whose `uuid` is `from` (or after
 * the first `offset` items), at most `count` (`limit` is the older name). A `from` not in the
 * listing (deleted since the last page) is EINVAL: guessing where to go on could skip or repeat
 * items.
 */
export function page<T extends { uuid: string }>(items: readonly T[], query: URLSearchParams): T[] {
  const count = queryInt(query, 'count', { min: 1, max: MAX_PAGE }) ?? queryInt(query, 'limit', { min: 1, max: MAX_PAGE });
  const offset = queryInt(query, 'offset', { min: 0 });
  const from = query.get('from');
  let start = offset ?? 0;
  if (from !== null && from !== '') {
    if (offset !== undefined) throw new ApiError(Errno.EINVAL, 'query parameters from and offset exclude each other');
    const i = items.findIndex((it) => it.uuid === from.toLowerCase());
    if (i < 0) throw new ApiError(Errno.EINVAL, `query parameter from: no item ${from} in this listing`);
    start = i + 1;
  }
  return items.slice(start, count === undefined ? undefined : start + count);
}

export const LIST_ORDERS = ['asc', 'desc'] as const;
export const LIST_SORT_KEYS = ['create_time'] as const;

/**
 * A whole listing as the query asks for it: `items` come in creation order (the stores' order);
 * `order=desc` reverses it, `sortby` may only name `create_time`; then one page (see `page`).
 */
export function listing<T extends { uuid: string }>(items: readonly T[], query: URLSearchParams): T[] {
  queryEnum(query, 'sortby', LIST_SORT_KEYS);
  const order = queryEnum(query, 'order', LIST_ORDERS) ?? 'asc';
  return page(order === 'desc' ? [...items].reverse() : items, query);
}

/**
 * The items of a batch request in either dialect: the query's `uuid`/`name` selectors, each
 * with the operation's fields read from the query by `queryFields` (the current dialect: a wait's
 * `state`, a log's `offset`), else the body array parsed by `bodySchema` (the older dialect:
 * fields per item); undefined when the request selects nothing either way.
 */
export function batchItems<T extends Selector>(
  query: URLSearchParams,
  body: unknown,
  bodySchema: { parse(input: unknown): T[] },
  maxItems: number,
  queryFields: (query: URLSearchParams) => Omit<T, keyof Selector> = () => ({}) as Omit<T, keyof Selector>,
): T[] | undefined {
  const sels = querySelectors(query, maxItems);
  oneDialect(sels, body);
  if (sels !== undefined) {
    const fields = queryFields(query);
    return sels.map((sel) => ({ ...fields, ...sel }) as T);
  }
  return body === undefined ? undefined : bodySchema.parse(body);
}
