/**
 * Per-principal request rates, answering "retry after N seconds" (429 + Retry-After).
 *
 * RequestRateLimiter: a token bucket per key — `burst` requests at once,
 * refilled at `ratePerSecond`. Memory is bounded: at most `maxTrackedKeys`
 * buckets; beyond that the least recently used bucket is dropped (a dropped
 * key starts again with a full bucket, which is the price of a bound).
 *
 * Open upload sessions are limited by the registry itself (`maxUploadsPerPrincipal`,
 * counted in its metadata store so the count survives restarts): one mechanism.
 *
 * It takes the clock as an option, so tests drive time by hand.
 */
import { AuthError } from './errors.js';

export type LimitAnswer = { readonly ok: true } | { readonly ok: false; readonly retryAfterSeconds: number };

export interface RequestRateLimitOptions {
  /** Sustained requests per second per principal (default 20). */
  ratePerSecond?: number;
  /** Requests allowed at once after a quiet period (default 40). */
  burst?: number;
  /** Most principals tracked at once (default 10 000). */
  maxTrackedKeys?: number;
  /** Milliseconds (injectable clock; default Date.now). */
  now?: () => number;
}

export const DEFAULT_REQUEST_RATE_LIMIT = Object.freeze({ ratePerSecond: 20, burst: 40, maxTrackedKeys: 10_000 });

interface Bucket {
  tokens: number;
  at: number;
}

function positive(n: number, what: string): number {
  if (!(Number.isFinite(n) && n > 0)) throw new RangeError(`${what} must be a positive number`);
  return n;
}

export class RequestRateLimiter {
  readonly ratePerSecond: number;
  readonly burst: number;
  readonly maxTrackedKeys: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  constructor(opts: RequestRateLimitOptions = {}) {
    this.ratePerSecond = positive(opts.ratePerSecond ?? DEFAULT_REQUEST_RATE_LIMIT.ratePerSecond, 'ratePerSecond');
    this.burst = positive(opts.burst ?? DEFAULT_REQUEST_RATE_LIMIT.burst, 'burst');
    this.maxTrackedKeys = positive(opts.maxTrackedKeys ?? DEFAULT_REQUEST_RATE_LIMIT.maxTrackedKeys, 'maxTrackedKeys');
    this.#now = opts.now ?? Date.now;
  }

  /** Takes `cost` requests from `key`'s bucket, or says how long to wait. */
  take(key: string, cost = 1): LimitAnswer {
    const now = this.#now();
    const b = this.#buckets.get(key) ?? { tokens: this.burst, at: now };
    this.#buckets.delete(key); // re-inserted below: Map order is our LRU order
    const elapsed = Math.max(0, now - b.at) / 1000;
    b.tokens = Math.min(this.burst, b.tokens + elapsed * this.ratePerSecond);
    b.at = now;
    this.#buckets.set(key, b);
    while (this.#buckets.size > this.maxTrackedKeys) {
      const oldest = this.#buckets.keys().next().value as string;
      this.#buckets.delete(oldest);
    }
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return { ok: true };
    }
    const wait = (cost - b.tokens) / this.ratePerSecond;
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil(wait)) };
  }

  /** Like `take`, but throws `AuthError('TOOMANYREQUESTS')` carrying the Retry-After seconds. */
  takeOrThrow(key: string, cost = 1): void {
    throwIfLimited(this.take(key, cost), 'too many requests');
  }

  get trackedKeys(): number {
    return this.#buckets.size;
  }
}

function throwIfLimited(answer: LimitAnswer, message: string): asserts answer is { ok: true } {
  if (!answer.ok) throw new AuthError('TOOMANYREQUESTS', message, { retryAfterSeconds: answer.retryAfterSeconds });
}

/** The key limits are counted under: the account name, or the client address for anonymous requests. */
export function limitKeyOf(principal: { kind: string; name?: string }, remoteAddress: string | undefined): string {
  return principal.kind === 'anonymous' || principal.name === undefined
    ? `anon:${remoteAddress ?? 'unknown'}`
    : `account:${principal.name}`;
}
