/**
 * The registry side of authentication, as one object the registry plugs in:
 * the challenge it sends, the principal a request carries, the `Authorizer`
 * hook deciding a route's (repository, actions), the mount decision and the
 * token endpoint (`GET /v2/token`, and the OAuth2 `POST /v2/token` form).
 *
 * Credentials accepted on /v2 routes:
 *   - `Bearer <registry token>` — a JWT from our token endpoint (or the control
 *     plane's, when its key is pinned): exactly its `access` claim;
 *   - `Bearer ukc_…` — an API token directly (our own client's shortcut);
 *   - `Basic base64(account:ukc_…)` — an API token as password (skopeo --creds).
 * The token endpoint accepts Basic or Bearer API tokens, never registry tokens.
 *
 * Invariants: headers are size-capped and parsed strictly before use; a bad
 * credential is always a 401 (never silently anonymous); what a request may do
 * is decided from the route's (repository, actions) with deny by default; no
 * secret ever appears in an error message.
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { looksLikeApiToken, type AccountStore } from './accounts.js';
import { AuthError, AuthInputError } from './errors.js';
import { JwtError, trustedKeyOf, type SigningKey, type TrustedKey } from './jwt.js';
import { isAccountName } from './names.js';
import { ANONYMOUS, type AccountPrincipal, type Policy, type Principal } from './policy.js';
import { limitKeyOf, RequestRateLimiter } from './ratelimit.js';
import { DEFAULT_SCOPE_LIMITS, formatScope, parseScopes, type RepositoryAction, type ResourceScope } from './scope.js';
import {
  ANONYMOUS_SUBJECT,
  readersOf,
  RegistryTokenService,
  verifyRegistryToken,
  type RepositoryReadersLookup,
} from './tokenservice.js';

/** What the registry hands the hook: any request with headers (node's IncomingMessage fits). */
export interface AuthRequest {
  readonly headers: IncomingHttpHeaders;
  readonly socket?: { readonly remoteAddress?: string | undefined };
}

/** The registry's `Authorizer` hook shape. */
export type Authorizer = (
  request: AuthRequest,
  need: { readonly repository: string; readonly actions: readonly RepositoryAction[] },
) => Promise<Principal>;

export interface RegistryAuthenticatorOptions {
  /** Absolute URL of the token endpoint, e.g. `http://127.0.0.1:5000/v2/token`. */
  realm: string;
  /** This registry's service name: the `aud` of tokens it accepts. */
  service: string;
  /** The `iss` of tokens it issues and accepts. */
  issuer: string;
  policy: Policy;
  /** Authenticates API tokens; without it only registry tokens are accepted. */
  accounts?: AccountStore;
  /** Signs tokens at the token endpoint; without it `tokenEndpoint` answers 404. */
  signingKey?: SigningKey;
  /** More pinned verification keys (the signing key's public half is always trusted). */
  trustedKeys?: readonly TrustedKey[];
  repositoryReaders?: RepositoryReadersLookup;
  /** Lifetime of issued tokens (default 300 s, clamped to 3600 s). */
  tokenTtlSeconds?: number;
  /** Per-principal request limiter; `false` turns limiting off (default: 20/s, burst 40). */
  rateLimiter?: RequestRateLimiter | false;
  /** Longest accepted `Authorization` header (default 8192). */
  maxAuthorizationHeaderLength?: number;
  /** Longest accepted token request URL (default 8192). */
  maxTokenRequestUrlLength?: number;
  /** Largest accepted OAuth2 form body (default 16 KiB). */
  maxTokenRequestBodyBytes?: number;
  now?: () => number;
}

export interface RegistryAuthenticator {
  /** The `WWW-Authenticate` value for a 401 on a route needing `scopes`. */
  challenge(scopes?: readonly ResourceScope[], error?: 'invalid_token' | 'insufficient_scope'): string;
  /** The principal a request carries; throws UNAUTHORIZED for a bad credential. */
  authenticate(headers: IncomingHttpHeaders): Principal;
  /** The `Authorizer` hook: the principal, or throws UNAUTHORIZED / DENIED / TOOMANYREQUESTS. */
  authorize: Authorizer;
  /**
   * For `GET /v2/` (the version check clients use to find the challenge):
   * anonymous requests get UNAUTHORIZED with the challenge, bad credentials too.
   */
  authorizeBase(request: AuthRequest): Promise<Principal>;
  /** For `?mount=&from=`: `mount` only with pull on the source, else a plain 202 upload. */
  mountDecision(principal: Principal, target: string, source: string): Promise<'mount' | 'upload'>;
  /** `/v2/_catalog` is for root only. */
  mayListCatalog(principal: Principal): boolean;
  /** Handles `GET /v2/token` and `POST /v2/token`; always ends the response. */
  tokenEndpoint(req: IncomingMessage, res: ServerResponse): Promise<void>;
}

const TOKEN68 = /^[A-Za-z0-9._~+/-]+=*$/;
const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const HEADER_VALUE_SAFE = /^[\x21\x23-\x5b\x5d-\x7e]+$/; // printable, no quote, no backslash, no space

interface ParsedCredential {
  scheme: 'basic' | 'bearer';
  value: string;
}

function parseAuthorization(value: string | undefined, maxLength: number): ParsedCredential | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length > maxLength) throw new AuthInputError('credentials', 'authorization header too long');
  const m = /^([A-Za-z]+) ([^ ]+)$/.exec(value);
  if (m === null || !TOKEN68.test(m[2] as string)) throw new AuthInputError('credentials', 'malformed authorization header');
  const scheme = (m[1] as string).toLowerCase();
  if (scheme !== 'basic' && scheme !== 'bearer') throw new AuthInputError('credentials', 'unsupported authorization scheme');
  return { scheme, value: m[2] as string };
}

function decodeBasic(value: string): { username: string; password: string } {
  if (!B64.test(value) || value.length % 4 !== 0) throw new AuthInputError('credentials', 'malformed basic credentials');
  const buf = Buffer.from(value, 'base64');
  if (buf.toString('base64') !== value) throw new AuthInputError('credentials', 'malformed basic credentials');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf);
  } catch {
    throw new AuthInputError('credentials', 'basic credentials are not UTF-8');
  }
  const colon = text.indexOf(':');
  if (colon < 0) throw new AuthInputError('credentials', 'basic credentials lack a colon');
  return { username: text.slice(0, colon), password: text.slice(colon + 1) };
}

function checkHeaderSafe(value: string, what: string): string {
  if (!HEADER_VALUE_SAFE.test(value)) throw new TypeError(`${what} may not contain quotes, backslashes or spaces`);
  return value;
}

class Authenticator implements RegistryAuthenticator {
  readonly #o: RegistryAuthenticatorOptions;
  readonly #keys: readonly TrustedKey[];
  readonly #issuer: RegistryTokenService | undefined;
  readonly #limiter: RequestRateLimiter | undefined;
  readonly #maxHeader: number;

  constructor(o: RegistryAuthenticatorOptions) {
    const realm = new URL(o.realm);
    if (realm.protocol !== 'http:' && realm.protocol !== 'https:') throw new TypeError('realm must be an http(s) URL');
    checkHeaderSafe(o.realm, 'realm');
    checkHeaderSafe(o.service, 'service');
    this.#o = o;
    this.#keys = [...(o.signingKey ? [trustedKeyOf(o.signingKey)] : []), ...(o.trustedKeys ?? [])];
    this.#issuer =
      o.signingKey === undefined
        ? undefined
        : new RegistryTokenService({
            signingKey: o.signingKey,
            issuer: o.issuer,
            service: o.service,
            policy: o.policy,
            ...(o.repositoryReaders ? { repositoryReaders: o.repositoryReaders } : {}),
            ...(o.tokenTtlSeconds !== undefined ? { ttlSeconds: o.tokenTtlSeconds } : {}),
            ...(o.now ? { now: o.now } : {}),
          });
    this.#limiter =
      o.rateLimiter === false ? undefined : (o.rateLimiter ?? new RequestRateLimiter(o.now ? { now: o.now } : {}));
    this.#maxHeader = o.maxAuthorizationHeaderLength ?? 8192;
  }

  challenge(scopes: readonly ResourceScope[] = [], error?: 'invalid_token' | 'insufficient_scope'): string {
    let v = `Bearer realm="${this.#o.realm}",service="${this.#o.service}"`;
    if (scopes.length > 0) v += `,scope="${scopes.map(formatScope).join(' ')}"`;
    if (error !== undefined) v += `,error="${error}"`;
    return v;
  }

  #unauthorized(message: string, scopes: readonly ResourceScope[] = [], error?: 'invalid_token' | 'insufficient_scope'): AuthError {
    return new AuthError('UNAUTHORIZED', message, { challenge: this.challenge(scopes, error) });
  }

  #accountPrincipal(text: string, expectedName?: string): AccountPrincipal | undefined {
    const found = this.#o.accounts?.authenticateToken(text);
    if (found === undefined) return undefined;
    if (expectedName !== undefined && found.account.name !== expectedName) return undefined;
    return Object.freeze({
      kind: 'account',
      name: found.account.name,
      role: found.account.role,
      tokenScope: found.token.scope,
    });
  }

  /** Principal from an API token credential (Basic or Bearer), for both /v2 and the token endpoint. */
  #fromApiCredential(cred: ParsedCredential): AccountPrincipal | undefined {
    if (cred.scheme === 'basic') {
      const { username, password } = decodeBasic(cred.value);
      if (!isAccountName(username) || !looksLikeApiToken(password)) return undefined;
      return this.#accountPrincipal(password, username);
    }
    return looksLikeApiToken(cred.value) ? this.#accountPrincipal(cred.value) : undefined;
  }

  #authenticate(headers: IncomingHttpHeaders, scopes: readonly ResourceScope[]): Principal {
    let cred: ParsedCredential | undefined;
    try {
      cred = parseAuthorization(headers.authorization, this.#maxHeader);
    } catch (e) {
      if (e instanceof AuthInputError) throw this.#unauthorized('malformed credentials', scopes, 'invalid_token');
      throw e;
    }
    if (cred === undefined) return ANONYMOUS;
    if (cred.scheme === 'bearer' && !looksLikeApiToken(cred.value)) {
      try {
        return verifyRegistryToken(cred.value, {
          keys: this.#keys,
          issuer: this.#o.issuer,
          service: this.#o.service,
          ...(this.#o.now ? { now: this.#o.now } : {}),
        });
      } catch (e) {
        if (e instanceof JwtError) throw this.#unauthorized(`invalid token (${e.kind})`, scopes, 'invalid_token');
        throw e;
      }
    }
    let principal: AccountPrincipal | undefined;
    try {
      principal = this.#fromApiCredential(cred);
    } catch (e) {
      if (e instanceof AuthInputError) throw this.#unauthorized('malformed credentials', scopes, 'invalid_token');
      throw e;
    }
    if (principal === undefined) throw this.#unauthorized('invalid credentials', scopes, 'invalid_token');
    return principal;
  }

  authenticate(headers: IncomingHttpHeaders): Principal {
    return this.#authenticate(headers, []);
  }

  #limitKey(principal: Principal, request: AuthRequest): string {
    const anon = principal.kind === 'anonymous' || (principal.kind === 'grant' && principal.name === ANONYMOUS_SUBJECT);
    return limitKeyOf(anon ? ANONYMOUS : principal, request.socket?.remoteAddress);
  }

  authorize: Authorizer = async (request, need) => {
    const actions = [...new Set(need.actions)];
    if (actions.length === 0) throw new TypeError('authorize needs at least one action');
    const scope: ResourceScope[] = [];
    try {
      scope.push(...parseScopes([`repository:${need.repository}:${actions.join(',')}`]));
    } catch {
      // An invalid name is denied outright; the registry should have answered NAME_INVALID before asking.
      throw new AuthError('DENIED', 'requested access to the resource is denied');
    }
    const principal = this.#authenticate(request.headers, scope);
    this.#limiter?.takeOrThrow(this.#limitKey(principal, request));
    const repo = await readersOf(this.#o.repositoryReaders, need.repository);
    const allowed = this.#o.policy.allowedActions(principal, repo, actions);
    if (allowed.length === actions.length) return principal;
    if (principal.kind === 'anonymous') throw this.#unauthorized('authentication required', scope);
    if (principal.kind === 'grant') {
      // The token names this repository: it was asked for and the policy answered; asking again cannot help.
      const asked = principal.name !== ANONYMOUS_SUBJECT && principal.access.some((e) => e.type === 'repository' && e.name === need.repository);
      if (asked) throw new AuthError('DENIED', 'requested access to the resource is denied');
      // Otherwise a token with this repository in it may help: tell the client which (the spec's insufficient_scope).
      throw this.#unauthorized('insufficient scope', scope, 'insufficient_scope');
    }
    throw new AuthError('DENIED', 'requested access to the resource is denied');
  };

  async authorizeBase(request: AuthRequest): Promise<Principal> {
    const principal = this.#authenticate(request.headers, []);
    this.#limiter?.takeOrThrow(this.#limitKey(principal, request));
    if (principal.kind === 'anonymous') throw this.#unauthorized('authentication required');
    return principal;
  }

  async mountDecision(principal: Principal, target: string, source: string): Promise<'mount' | 'upload'> {
    const [t, s] = await Promise.all([
      readersOf(this.#o.repositoryReaders, target),
      readersOf(this.#o.repositoryReaders, source),
    ]);
    return this.#o.policy.mountDecision(principal, t, s);
  }

  mayListCatalog(principal: Principal): boolean {
    return this.#o.policy.mayListCatalog(principal);
  }

  async tokenEndpoint(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.#tokenEndpoint(req, res);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof AuthError) {
        const headers: Record<string, string> = {};
        if (e.code === 'UNAUTHORIZED') headers['www-authenticate'] = `Basic realm="${this.#o.service}"`;
        if (e.retryAfterSeconds !== undefined) headers['retry-after'] = String(e.retryAfterSeconds);
        sendError(res, e.status, e.code, e.message, headers);
      } else if (e instanceof TokenRequestError) {
        sendError(res, e.status, e.code, e.message);
      } else {
        sendError(res, 500, 'UNKNOWN', 'internal error');
      }
    }
  }

  async #tokenEndpoint(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.#issuer === undefined) throw new TokenRequestError(404, 'UNSUPPORTED', 'this registry does not issue tokens');
    const url = req.url ?? '';
    if (url.length > (this.#o.maxTokenRequestUrlLength ?? 8192)) {
      throw new TokenRequestError(414, 'UNSUPPORTED', 'token request URL too long');
    }
    let params: URLSearchParams;
    let principal: Principal;
    let oauth = false;
    if (req.method === 'GET') {
      params = new URL(url, 'http://token.invalid').searchParams;
      principal = this.#tokenRequester(req.headers);
    } else if (req.method === 'POST') {
      oauth = true;
      const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
      if (type !== 'application/x-www-form-urlencoded') {
        throw new TokenRequestError(415, 'UNSUPPORTED', 'token request form must be application/x-www-form-urlencoded');
      }
      params = new URLSearchParams(await readBody(req, this.#o.maxTokenRequestBodyBytes ?? 16 * 1024));
      principal = this.#oauthRequester(params, req.headers);
    } else {
      res.setHeader('allow', 'GET, POST');
      throw new TokenRequestError(405, 'UNSUPPORTED', 'method not allowed');
    }
    for (const single of ['service', 'account', 'grant_type', 'username', 'password']) {
      if (params.getAll(single).length > 1) throw new TokenRequestError(400, 'UNSUPPORTED', `repeated parameter ${single}`);
    }
    const service = params.get('service');
    if (service !== null && service !== this.#o.service) {
      throw new TokenRequestError(400, 'UNSUPPORTED', 'token requested for another service');
    }
    const account = params.get('account');
    if (account !== null && principal.kind === 'account' && account !== principal.name) {
      throw new AuthError('UNAUTHORIZED', 'account does not match the credentials');
    }
    let scopes: ResourceScope[];
    try {
      scopes = parseScopes(params.getAll('scope'), DEFAULT_SCOPE_LIMITS);
    } catch (e) {
      if (e instanceof AuthInputError) throw new TokenRequestError(400, 'UNSUPPORTED', e.message);
      throw e;
    }
    this.#limiter?.takeOrThrow(limitKeyOf(principal, req.socket.remoteAddress));
    const issued = await this.#issuer.issue(principal, scopes);
    const body: Record<string, unknown> = {
      token: issued.token,
      access_token: issued.access_token,
      expires_in: issued.expires_in,
      issued_at: issued.issued_at,
    };
    if (oauth) {
      body.scope = issued.access
        .filter((a) => a.actions.length > 0)
        .map((a) => `${a.type}:${a.name}:${a.actions.join(',')}`)
        .join(' ');
    }
    sendJson(res, 200, body);
  }

  #tokenRequester(headers: IncomingHttpHeaders): Principal {
    let cred: ParsedCredential | undefined;
    try {
      cred = parseAuthorization(headers.authorization, this.#maxHeader);
    } catch (e) {
      if (e instanceof AuthInputError) throw new AuthError('UNAUTHORIZED', 'malformed credentials');
      throw e;
    }
    if (cred === undefined) return ANONYMOUS;
    let principal: AccountPrincipal | undefined;
    try {
      principal = this.#fromApiCredential(cred);
    } catch (e) {
      if (e instanceof AuthInputError) throw new AuthError('UNAUTHORIZED', 'malformed credentials');
      throw e;
    }
    if (principal === undefined) throw new AuthError('UNAUTHORIZED', 'invalid credentials');
    return principal;
  }

  #oauthRequester(form: URLSearchParams, headers: IncomingHttpHeaders): Principal {
    const grant = form.get('grant_type');
    if (grant !== 'password') {
      throw new TokenRequestError(400, 'UNSUPPORTED', 'only grant_type=password is supported');
    }
    const username = form.get('username');
    const password = form.get('password');
    if (username === null || password === null) return this.#tokenRequester(headers);
    if (!isAccountName(username) || !looksLikeApiToken(password)) throw new AuthError('UNAUTHORIZED', 'invalid credentials');
    const p = this.#accountPrincipal(password, username);
    if (p === undefined) throw new AuthError('UNAUTHORIZED', 'invalid credentials');
    // OAuth2 clients send scopes space-separated in one field; parseScopes splits them.
    return p;
  }
}

class TokenRequestError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
    ...headers,
  });
  res.end(text);
}

function sendError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  sendJson(res, status, { errors: [{ code, message }] }, headers);
}

async function readBody(req: IncomingMessage, max: number): Promise<string> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (Number.isFinite(declared) && declared > max) throw new TokenRequestError(413, 'SIZE_INVALID', 'token request body too large');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buf = chunk as Buffer;
    size += buf.length;
    if (size > max) throw new TokenRequestError(413, 'SIZE_INVALID', 'token request body too large');
    chunks.push(buf);
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new TokenRequestError(400, 'UNSUPPORTED', 'token request body is not UTF-8');
  }
}

/** Builds the registry's authentication object; see the file comment and src/auth/index.ts. */
export function createRegistryAuthenticator(opts: RegistryAuthenticatorOptions): RegistryAuthenticator {
  return new Authenticator(opts);
}
