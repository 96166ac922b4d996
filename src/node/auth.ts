/**
 * How the node learns who is asking: src/auth's `AccountPrincipal` (with its
 * account's quotas) from `Authorization: Bearer <UKC_TOKEN>`, and src/auth's
 * `Policy` decides what that principal may see and change. There is no node
 * vocabulary of its own: this file only finds the principal.
 *
 * Tokens are checked by a `TokenVerifier`, one of:
 *   - `localTokenVerifier(accounts)`: the accounts database itself (`ukcd dev`,
 *     or `ukcd node --accounts-db` sharing the control plane's file);
 *   - `ControlPlaneTokenVerifier`: asks the control plane's `GET /v1/auth`
 *     (`ukcd node --auth-url`). Credentials go to that one origin only, never
 *     across a redirect. Positive answers are cached for `positiveTtlMs`;
 *     refusals for at most one second (a freshly created token works at once,
 *     a revoked one stops working within `positiveTtlMs`).
 *
 * Invariant (security case 14): the policy answers "no" to `read` for another
 * tenant's object, and the services turn that into ENOENT exactly like a
 * missing object, so nobody learns whether it exists.
 */
import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { accountPrincipal, looksLikeApiToken, type AccountPrincipal, type AccountRole, type AccountStore, type TokenScope } from '../auth/index.js';
import type { Authenticator } from '../api/index.js';
import { Errno, NodeError, tooManyRequests } from './errors.js';

/** What the node's v1 API asks for a principal (src/api's `Authenticator`). */
export type { Authenticator };

/** The account every request belongs to on a single-tenant node: root, no quotas. */
export const LOCAL_PRINCIPAL: AccountPrincipal = accountPrincipal('local', 'root');

/** Default: one tenant, no token needed. */
export const singleTenantAuthenticator: Authenticator = () => LOCAL_PRINCIPAL;

export interface TokenVerifier {
  /** The account behind an API token text (with its quotas and the token's scope), or undefined when the token is not valid. */
  verify(token: string): Promise<AccountPrincipal | undefined>;
}

/** Tokens checked against an accounts database in this process. */
export function localTokenVerifier(accounts: AccountStore): TokenVerifier {
  return {
    async verify(token) {
      const found = accounts.authenticateToken(token);
      if (found === undefined) return undefined;
      return Object.freeze({ kind: 'account', name: found.account.name, role: found.account.role, tokenScope: found.token.scope, quotas: found.account.quotas });
    },
  };
}

export interface ControlPlaneTokenVerifierOptions {
  /** The control plane's base URL (`http://host:port`); tokens are sent to `<origin>/v1/auth` only. */
  authUrl: string;
  /** How long a valid token is trusted without asking again (default 30 s). */
  positiveTtlMs?: number;
  /** How long a refusal is remembered (default 1 s; never more than 1 s). */
  negativeTtlMs?: number;
  /** Most tokens cached at once (default 10 000; the oldest entry goes first). */
  maxCachedTokens?: number;
  /** Longest wait for the control plane (default 5 s). */
  requestTimeoutMs?: number;
  /** Milliseconds since the epoch (tests). */
  now?: () => number;
  /** The HTTP client (tests). */
  fetch?: typeof fetch;
}

export const DEFAULT_CONTROL_PLANE_TOKEN_CACHE = Object.freeze({
  positiveTtlMs: 30_000,
  negativeTtlMs: 1_000,
  maxCachedTokens: 10_000,
  requestTimeoutMs: 5_000,
});

/** Refusals are never remembered longer than this, whatever the options say. */
const MAX_NEGATIVE_TTL_MS = 1_000;

interface CacheEntry {
  readonly until: number;
  readonly account: AccountPrincipal | undefined;
}

const ROLES: readonly string[] = ['root', 'user'];
const SCOPES: readonly string[] = ['full', 'registry', 'registry-pull'];

function quotaNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : undefined;
}

/** Reads `data.auth[0]` of the control plane's answer strictly; anything unexpected is undefined. */
function parseAuthAnswer(body: unknown): AccountPrincipal | undefined {
  const item = (body as { data?: { auth?: unknown[] } } | null)?.data?.auth?.[0] as Record<string, unknown> | undefined;
  if (typeof item !== 'object' || item === null) return undefined;
  const { account, role, token_scope: scope, quotas } = item;
  if (typeof account !== 'string' || account === '' || typeof role !== 'string' || !ROLES.includes(role)) return undefined;
  if (typeof scope !== 'string' || !SCOPES.includes(scope)) return undefined;
  const q = (quotas ?? {}) as Record<string, unknown>;
  const maxInstances = quotaNumber(q.instances);
  const maxLiveMemoryMb = quotaNumber(q.live_memory_mb);
  const maxServices = quotaNumber(q.services);
  if (maxInstances === undefined || maxLiveMemoryMb === undefined || maxServices === undefined) return undefined;
  return Object.freeze({
    kind: 'account',
    name: account,
    role: role as AccountRole,
    tokenScope: scope as TokenScope,
    quotas: Object.freeze({ maxInstances, maxLiveMemoryMb, maxServices }),
  });
}

/** Tokens checked by the control plane (`GET /v1/auth`), with a short cache. */
export class ControlPlaneTokenVerifier implements TokenVerifier {
  readonly endpoint: string;
  readonly #positiveTtlMs: number;
  readonly #negativeTtlMs: number;
  readonly #maxCached: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  readonly #fetch: typeof fetch;
  /** Keyed by sha256 of the token: the token text itself is not kept. Map order is insertion order. */
  readonly #cache = new Map<string, CacheEntry>();

  constructor(opts: ControlPlaneTokenVerifierOptions) {
    const base = new URL(opts.authUrl);
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('authUrl must be an http(s) URL');
    if (base.username !== '' || base.password !== '') throw new TypeError('authUrl must not carry credentials');
    this.endpoint = `${base.origin}/v1/auth`;
    const d = DEFAULT_CONTROL_PLANE_TOKEN_CACHE;
    this.#positiveTtlMs = opts.positiveTtlMs ?? d.positiveTtlMs;
    this.#negativeTtlMs = Math.min(opts.negativeTtlMs ?? d.negativeTtlMs, MAX_NEGATIVE_TTL_MS);
    this.#maxCached = opts.maxCachedTokens ?? d.maxCachedTokens;
    this.#timeoutMs = opts.requestTimeoutMs ?? d.requestTimeoutMs;
    this.#now = opts.now ?? Date.now;
    this.#fetch = opts.fetch ?? fetch;
  }

  async verify(token: string): Promise<AccountPrincipal | undefined> {
    if (!looksLikeApiToken(token)) return undefined; // never send junk (or someone else's secret format) upstream
    const key = createHash('sha256').update(token).digest('hex');
    const now = this.#now();
    const cached = this.#cache.get(key);
    if (cached !== undefined && cached.until > now) return cached.account;
    const account = await this.#ask(token);
    this.#cache.delete(key);
    this.#cache.set(key, { until: now + (account === undefined ? this.#negativeTtlMs : this.#positiveTtlMs), account });
    while (this.#cache.size > this.#maxCached) this.#cache.delete(this.#cache.keys().next().value as string);
    return account;
  }

  async #ask(token: string): Promise<AccountPrincipal | undefined> {
    let res: Response;
    try {
      res = await this.#fetch(this.endpoint, {
        method: 'GET',
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        redirect: 'manual', // a redirect would carry the token elsewhere
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch {
      throw new NodeError(Errno.EIO, 'cannot verify the token: the control plane does not answer', 503);
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      return undefined;
    }
    if (res.status === 429) {
      await res.body?.cancel();
      throw tooManyRequests(Number(res.headers.get('retry-after') ?? '1') || 1);
    }
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new NodeError(Errno.EIO, `cannot verify the token: the control plane answered HTTP ${res.status}`, 503);
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      throw new NodeError(Errno.EIO, 'cannot verify the token: the control plane answered with invalid JSON', 503);
    }
    const account = parseAuthAnswer(body);
    if (account === undefined) throw new NodeError(Errno.EIO, 'cannot verify the token: unexpected answer from the control plane', 503);
    return account;
  }
}

const BEARER = /^Bearer ([^\s]+)$/i;
const BASIC = /^Basic ([A-Za-z0-9+/=]+)$/i;

/** Longest accepted `Authorization` header. */
export const MAX_AUTHORIZATION_HEADER_LENGTH = 8192;

/**
 * The API token in `Authorization`: `Bearer <token>`, or `Basic` with the token as
 * password (what registry clients send). Undefined when absent or malformed.
 */
export function presentedToken(headers: IncomingHttpHeaders, opts: { basic: boolean }): string | undefined {
  const header = headers.authorization;
  if (typeof header !== 'string' || header.length > MAX_AUTHORIZATION_HEADER_LENGTH) return undefined;
  const bearer = BEARER.exec(header);
  if (bearer) return bearer[1];
  if (!opts.basic) return undefined;
  const basic = BASIC.exec(header);
  if (!basic) return undefined;
  const text = Buffer.from(basic[1] as string, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? undefined : text.slice(colon + 1);
}

/**
 * The node API's authenticator over any token verifier: `Bearer` only (like the control plane;
 * Basic is for registry clients), and only full-scope tokens: registry-only tokens (CI pushing
 * images, nodes pulling) are not platform credentials.
 */
export function tokenAuthenticator(verifier: TokenVerifier): Authenticator {
  return async (headers) => {
    const token = presentedToken(headers, { basic: false });
    if (token === undefined || !looksLikeApiToken(token)) return undefined;
    const found = await verifier.verify(token);
    if (found === undefined || found.tokenScope !== 'full') return undefined;
    return found;
  };
}
