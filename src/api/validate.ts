/**
 * A tiny strict validator for JSON request bodies. Schemas are values that
 * parse `unknown` into typed data or throw `ValidationError` with the path of
 * the first offending value. Objects are closed: an unknown key is an error,
 * as the v1 API requires. `null` is never accepted where a value is expected
 * (an optional field is either absent or well-typed).
 */

export class ValidationError extends Error {
  constructor(
    readonly path: string,
    readonly reason: string,
  ) {
    super(`${path === '' ? 'body' : path}: ${reason}`);
    this.name = 'ValidationError';
  }
}

export interface Schema<T> {
  readonly optional: false;
  /** Human name of the expected type, for messages. */
  readonly expected: string;
  parse(value: unknown, path?: string): T;
}

export interface OptionalSchema<T> {
  readonly optional: true;
  readonly inner: Schema<T>;
}

export type Infer<S> = S extends Schema<infer T> ? T : S extends OptionalSchema<infer T> ? T : never;

export type Shape = Record<string, Schema<unknown> | OptionalSchema<unknown>>;

type RequiredKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<unknown> ? never : K }[keyof S];
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never }[keyof S];
type Simplify<T> = { [K in keyof T]: T[K] };
export type InferShape<S extends Shape> = Simplify<
  { [K in RequiredKeys<S>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> }
>;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function schema<T>(expected: string, parse: (value: unknown, path: string) => T): Schema<T> {
  return { optional: false, expected, parse: (value, path = '') => parse(value, path) };
}

const at = (path: string, key: string | number): string =>
  typeof key === 'number' ? `${path}[${key}]` : path === '' ? key : `${path}.${key}`;

export interface StringRules {
  minLength?: number;
  maxLength?: number;
  pattern?: RegExp;
  /** Shown instead of the pattern when it does not match. */
  patternHint?: string;
}

export function string(rules: StringRules = {}): Schema<string> {
  return schema('string', (v, path) => {
    if (typeof v !== 'string') throw new ValidationError(path, `expected string, got ${describe(v)}`);
    if (rules.minLength !== undefined && v.length < rules.minLength)
      throw new ValidationError(path, `must be at least ${rules.minLength} characters`);
    if (rules.maxLength !== undefined && v.length > rules.maxLength)
      throw new ValidationError(path, `must be at most ${rules.maxLength} characters`);
    if (rules.pattern !== undefined && !rules.pattern.test(v))
      throw new ValidationError(path, rules.patternHint ?? `must match ${String(rules.pattern)}`);
    return v;
  });
}

export interface IntRules {
  min?: number;
  max?: number;
}

export function int(rules: IntRules = {}): Schema<number> {
  return schema('integer', (v, path) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw new ValidationError(path, `expected integer, got ${describe(v)}`);
    if (rules.min !== undefined && v < rules.min) throw new ValidationError(path, `must be >= ${rules.min}`);
    if (rules.max !== undefined && v > rules.max) throw new ValidationError(path, `must be <= ${rules.max}`);
    return v;
  });
}

export function bool(): Schema<boolean> {
  return schema('boolean', (v, path) => {
    if (typeof v !== 'boolean') throw new ValidationError(path, `expected boolean, got ${describe(v)}`);
    return v;
  });
}

export function oneOf<const T extends readonly string[]>(values: T): Schema<T[number]> {
  return schema(values.join('|'), (v, path) => {
    if (typeof v !== 'string' || !values.includes(v))
      throw new ValidationError(path, `must be one of ${values.join(', ')}`);
    return v as T[number];
  });
}

export interface ArrayRules {
  minItems?: number;
  maxItems?: number;
}

export function array<T>(item: Schema<T>, rules: ArrayRules = {}): Schema<T[]> {
  return schema(`${item.expected}[]`, (v, path) => {
    if (!Array.isArray(v)) throw new ValidationError(path, `expected array, got ${describe(v)}`);
    if (rules.minItems !== undefined && v.length < rules.minItems)
      throw new ValidationError(path, `must hold at least ${rules.minItems} items`);
    if (rules.maxItems !== undefined && v.length > rules.maxItems)
      throw new ValidationError(path, `must hold at most ${rules.maxItems} items`);
    return v.map((x, i) => item.parse(x, at(path, i)));
  });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface RecordRules {
  maxEntries?: number;
  key?: Schema<string>;
}

/** A map of string keys to values of one schema (e.g. `env`). */
export function record<T>(value: Schema<T>, rules: RecordRules = {}): Schema<Record<string, T>> {
  return schema(`map of ${value.expected}`, (v, path) => {
    if (!isPlainObject(v)) throw new ValidationError(path, `expected object, got ${describe(v)}`);
    const keys = Object.keys(v);
    if (rules.maxEntries !== undefined && keys.length > rules.maxEntries)
      throw new ValidationError(path, `must hold at most ${rules.maxEntries} entries`);
    const out: Record<string, T> = Object.create(null) as Record<string, T>;
    for (const k of keys) {
      rules.key?.parse(k, at(path, k));
      out[k] = value.parse(v[k], at(path, k));
    }
    return out;
  });
}

/**
 * Any JSON value but null: a field of the contract whose content is checked elsewhere (an update
 * triple's `value`, checked once folded) or not at all (a feature refused as not supported).
 */
export function anyValue(): Schema<unknown> {
  return schema('value', (v, path) => {
    if (v === null) throw new ValidationError(path, 'expected a value, got null');
    return v;
  });
}

export function optional<T>(inner: Schema<T>): OptionalSchema<T> {
  return { optional: true, inner };
}

/** A closed object: every key of `shape` is checked, any other key is rejected. */
export function object<S extends Shape>(shape: S): Schema<InferShape<S>> {
  const keys = Object.keys(shape);
  return schema('object', (v, path) => {
    if (!isPlainObject(v)) throw new ValidationError(path, `expected object, got ${describe(v)}`);
    for (const k of Object.keys(v)) {
      if (!Object.hasOwn(shape, k)) throw new ValidationError(at(path, k), 'unknown field');
    }
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const field = shape[k]!;
      const present = Object.hasOwn(v, k) && v[k] !== undefined;
      if (field.optional) {
        if (present) out[k] = field.inner.parse(v[k], at(path, k));
      } else {
        if (!present) throw new ValidationError(at(path, k), 'required field missing');
        out[k] = field.parse(v[k], at(path, k));
      }
    }
    return out as InferShape<S>;
  });
}

/** Post-parse check: `check` returns an error reason or undefined. */
export function refine<T>(base: Schema<T>, check: (value: T) => string | undefined): Schema<T> {
  return schema(base.expected, (v, path) => {
    const parsed = base.parse(v, path);
    const reason = check(parsed);
    if (reason !== undefined) throw new ValidationError(path, reason);
    return parsed;
  });
}

/**
 * Chooses the schema by the JSON type of the value (string, object, array, ...),
 * so errors come from the one branch that applies rather than from all of them.
 */
export function byType<A, B>(branches: { string?: Schema<A>; object?: Schema<B> }): Schema<A | B> {
  const names = Object.keys(branches).join(' or ');
  return schema(names, (v, path) => {
    if (typeof v === 'string' && branches.string) return branches.string.parse(v, path);
    if (isPlainObject(v) && branches.object) return branches.object.parse(v, path);
    throw new ValidationError(path, `expected ${names}, got ${describe(v)}`);
  });
}

/** `{uuid}` or `{name}`, exactly one of the two, plus the extra fields of `shape`. */
export function selector<S extends Shape>(
  shape: S,
): Schema<InferShape<S> & { uuid?: string; name?: string }> {
  const base = object({ ...shape, uuid: optional(string({ minLength: 1, maxLength: 128 })), name: optional(string({ minLength: 1, maxLength: 128 })) });
  return refine(base, (v) => {
    const r = v as { uuid?: string; name?: string };
    return (r.uuid === undefined) === (r.name === undefined) ? 'exactly one of uuid or name is required' : undefined;
  }) as Schema<InferShape<S> & { uuid?: string; name?: string }>;
}
