/**
 * The registry token service: turns an authenticated principal and the scopes
 * it asks for into a short-lived signed token granting the intersection of
 * what was asked and what the policy allows (never more), and verifies such
 * tokens back into a `GrantPrincipal`.
 *
 * Tokens follow the distribution token spec: a JWT with `iss`, `sub`, `aud`
 * (= the registry's service name), `exp`, `nbf`, `iat`, `jti` and an `access`
 * list of `{type, name, actions}`; the header names the signing key (`kid`).
 */
import { randomUUID } from 'node:crypto';
import { signJwt, trustedKeyOf, verifyJwt, type AccessEntry, type SigningKey, type TrustedKey } from './jwt.js';
import type { GrantPrincipal, Policy, Principal, RepositoryObject } from './policy.js';
import type { ResourceScope } from './scope.js';

/** The longest lifetime any registry token may have; `ttlSeconds` is clamped to it. */
export const MAX_REGISTRY_TOKEN_TTL_SECONDS = 3600;
export const DEFAULT_REGISTRY_TOKEN_TTL_SECONDS = 300;
/** The `sub` of tokens issued to requests without credentials (a reserved account name). */
export const ANONYMOUS_SUBJECT = 'anonymous';

/** Readers of a repository besides its owner (the image's `users`); [] or undefined when none. */
export type RepositoryReadersLookup = (
  repository: string,
) => readonly string[] | undefined | Promise<readonly string[] | undefined>;

export interface RegistryTokenServiceOptions {
  signingKey: SigningKey;
  /** `iss` of issued tokens; verifiers must expect the same value. */
  issuer: string;
  /** `aud` of issued tokens: the registry's service name from its challenge. */
  service: string;
  policy: Policy;
  repositoryReaders?: RepositoryReadersLookup;
  /** Lifetime of issued tokens (default 300 s, at most 3600 s). */
  ttlSeconds?: number;
  /** Milliseconds since the epoch (injectable clock). */
  now?: () => number;
}

/** The JSON body of a token response (both names for the token, as clients differ). */
export interface IssuedRegistryToken {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  /** What was granted (also readable from the token); not sent on the wire by GET. */
  access: readonly AccessEntry[];
}

export async function readersOf(lookup: RepositoryReadersLookup | undefined, name: string): Promise<RepositoryObject> {
  const readers = lookup === undefined ? undefined : await lookup(name);
  return readers === undefined ? { kind: 'repository', name } : { kind: 'repository', name, readers: [...readers] };
}

export class RegistryTokenService {
  readonly issuer: string;
  readonly service: string;
  readonly ttlSeconds: number;
  readonly #key: SigningKey;
  readonly #policy: Policy;
  readonly #readers: RepositoryReadersLookup | undefined;
  readonly #now: () => number;

  constructor(opts: RegistryTokenServiceOptions) {
    this.issuer = opts.issuer;
    this.service = opts.service;
    const ttl = opts.ttlSeconds ?? DEFAULT_REGISTRY_TOKEN_TTL_SECONDS;
    if (!Number.isSafeInteger(ttl) || ttl < 1) throw new RangeError('ttlSeconds must be a positive integer');
    this.ttlSeconds = Math.min(ttl, MAX_REGISTRY_TOKEN_TTL_SECONDS);
    this.#key = opts.signingKey;
    this.#policy = opts.policy;
    this.#readers = opts.repositoryReaders;
    this.#now = opts.now ?? Date.now;
  }

  /** The public key verifiers must pin to accept our tokens. */
  get trustedKey(): TrustedKey {
    return trustedKeyOf(this.#key);
  }

  /**
   * Decides what `principal` gets out of `scopes`; unknown resource types get nothing.
   * Repositories an authenticated principal asked about are listed even when nothing was granted.
   */
  async grant(principal: Principal, scopes: readonly ResourceScope[]): Promise<AccessEntry[]> {
    const out: AccessEntry[] = [];
    for (const s of scopes) {
      if (s.type === 'repository') {
        const repo = await readersOf(this.#readers, s.name);
        const actions = this.#policy.allowedActions(principal, repo, s.actions);
        // An account's token names every repository it asked about, even with nothing granted:
        // the registry then answers 403 DENIED there (asking again cannot help) instead of
        // 401 insufficient_scope (which means "ask for this repository").
        if (actions.length > 0 || principal.kind !== 'anonymous') out.push({ type: 'repository', name: s.name, actions });
      } else if (s.resourceType === 'registry' && s.name === 'catalog' && s.actions.includes('*')) {
        if (this.#policy.mayListCatalog(principal)) out.push({ type: 'registry', name: 'catalog', actions: ['*'] });
      }
    }
    return out;
  }

  /** Issues a token for what the policy grants of `scopes` (possibly nothing, as the spec wants). */
  async issue(principal: Principal, scopes: readonly ResourceScope[]): Promise<IssuedRegistryToken> {
    const access = await this.grant(principal, scopes);
    const nowMs = this.#now();
    const now = Math.floor(nowMs / 1000);
    const sub = principal.kind === 'anonymous' ? ANONYMOUS_SUBJECT : principal.name;
    const token = signJwt(
      { iss: this.issuer, sub, aud: this.service, exp: now + this.ttlSeconds, nbf: now, iat: now, jti: randomUUID(), access },
      this.#key,
    );
    return { token, access_token: token, expires_in: this.ttlSeconds, issued_at: new Date(now * 1000).toISOString(), access };
  }
}

export interface RegistryTokenVerifierOptions {
  /** Pinned public keys (e.g. the control plane's, on a node). */
  keys: readonly TrustedKey[];
  issuer: string;
  /** Our service name: tokens for any other audience are refused. */
  service: string;
  now?: () => number;
  clockSkewSeconds?: number;
}

/** Verifies a registry token into the principal it stands for; throws `JwtError`. */
export function verifyRegistryToken(text: string, opts: RegistryTokenVerifierOptions): GrantPrincipal {
  const claims = verifyJwt(text, {
    keys: opts.keys,
    issuer: opts.issuer,
    audience: opts.service,
    maxLifetimeSeconds: MAX_REGISTRY_TOKEN_TTL_SECONDS,
    ...(opts.now !== undefined ? { now: opts.now } : {}),
    ...(opts.clockSkewSeconds !== undefined ? { clockSkewSeconds: opts.clockSkewSeconds } : {}),
  });
  return Object.freeze({ kind: 'grant', name: claims.sub, access: claims.access });
}
