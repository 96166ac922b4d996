/**
 * Authentication and quota checks for the platform API (node controller and
 * control plane, `/v1/...`): `Authorization: Bearer <UKC_TOKEN>` only, where
 * the token is one of our API tokens. There is no anonymous access to /v1
 * (except what the caller chooses to leave open, such as `/v1/healthz`).
 */
import type { IncomingHttpHeaders } from 'node:http';
import { looksLikeApiToken, type AccountQuotas, type AccountStore } from './accounts.js';
import { AuthError } from './errors.js';
import type { AccountPrincipal } from './policy.js';
import { limitKeyOf, type RequestRateLimiter } from './ratelimit.js';

export interface PlatformAuthenticatorOptions {
  accounts: AccountStore;
  /** Optional per-principal request limiter (429 + Retry-After). */
  rateLimiter?: RequestRateLimiter;
  /** Longest accepted `Authorization` header (default 8192). */
  maxAuthorizationHeaderLength?: number;
  /** The realm named in the 401 challenge (default `ukc`). */
  realm?: string;
}

export interface PlatformAuthenticator {
  /** The account behind the request; throws UNAUTHORIZED (with a challenge) or TOOMANYREQUESTS. */
  authenticate(request: { headers: IncomingHttpHeaders; socket?: { remoteAddress?: string | undefined } }): AccountPrincipal;
}

const BEARER = /^Bearer (\S+)$/i;

export function createPlatformAuthenticator(opts: PlatformAuthenticatorOptions): PlatformAuthenticator {
  const max = opts.maxAuthorizationHeaderLength ?? 8192;
  const realm = opts.realm ?? 'ukc';
  if (!/^[A-Za-z0-9._-]+$/.test(realm)) throw new TypeError('realm must be a plain word');
  const unauthorized = (message: string): AuthError =>
    new AuthError('UNAUTHORIZED', message, { challenge: `Bearer realm="${realm}"` });
  return {
    authenticate(request) {
      const header = request.headers.authorization;
      if (header === undefined) throw unauthorized('authentication required');
      if (typeof header !== 'string' || header.length > max) throw unauthorized('malformed credentials');
      const m = BEARER.exec(header);
      const text = m?.[1];
      if (text === undefined || !looksLikeApiToken(text)) throw unauthorized('malformed credentials');
      const found = opts.accounts.authenticateToken(text);
      if (found === undefined) throw unauthorized('invalid token');
      const principal: AccountPrincipal = Object.freeze({
        kind: 'account',
        name: found.account.name,
        role: found.account.role,
        tokenScope: found.token.scope,
      });
      opts.rateLimiter?.takeOrThrow(limitKeyOf(principal, request.socket?.remoteAddress));
      return principal;
    },
  };
}

/** What an account uses now, counted by the caller from its own records. */
export interface AccountUsage {
  readonly instances: number;
  readonly liveMemoryMb: number;
  readonly services: number;
}

/**
 * The first quota a change would exceed, or undefined when it fits. Callers
 * answer EDQUOT (122) naming it. Root is bound by its quotas like anyone.
 */
export function exceededQuota(
  quotas: AccountQuotas,
  usage: AccountUsage,
  adding: Partial<AccountUsage>,
): keyof AccountQuotas | undefined {
  if (usage.instances + (adding.instances ?? 0) > quotas.maxInstances) return 'maxInstances';
  if (usage.liveMemoryMb + (adding.liveMemoryMb ?? 0) > quotas.maxLiveMemoryMb) return 'maxLiveMemoryMb';
  if (usage.services + (adding.services ?? 0) > quotas.maxServices) return 'maxServices';
  return undefined;
}
