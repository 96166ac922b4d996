/**
 * Registry authentication: Basic, and the Docker token flow (a 401 carrying
 * `WWW-Authenticate: Bearer realm="…",service="…",scope="…"`, answered by a
 * GET to the realm that returns `{"token"|"access_token", "expires_in"}`).
 *
 * Invariant (security-cases.md row 10): the realm is contacted only when its
 * host is the registry's own host or one the caller allowed explicitly, so a
 * hostile registry cannot aim the client (and its Basic credentials) at an
 * internal address.
 */
import { AuthError, PolicyError } from './errors.js';
import { readBody, redactUrl, type Transport } from './transport.js';

export type Credentials = { username: string; password: string } | { token: string };

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/**
 * Parses a WWW-Authenticate value into challenges (RFC 7235 grammar: a scheme,
 * then comma-separated `key=token` or `key="quoted string"` parameters; several
 * challenges may share one header).
 */
export function parseChallenges(header: string): Challenge[] {
  const out: Challenge[] = [];
  let i = 0;
  const n = header.length;
  const skipSpace = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && /[A-Za-z0-9!#$%&'*+.^_`|~-]/.test(header[i] as string)) i++;
    return header.slice(start, i);
  };
  let current: Challenge | undefined;
  while (i < n) {
    skipSpace();
    if (header[i] === ',') {
      i++;
      continue;
    }
    const token = readToken();
    if (token === '') {
      i++; // stray character: skip it rather than loop forever
      continue;
    }
    skipSpace();
    if (header[i] === '=' && current) {
      i++;
      skipSpace();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote
      } else {
        // Lenient: registries send unquoted URLs, which are not RFC tokens.
        const start = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
        value = header.slice(start, i);
      }
      current.params[token.toLowerCase()] = value;
    } else {
      current = { scheme: token.toLowerCase(), params: {} };
      out.push(current);
    }
  }
  return out;
}

export interface TokenAuthOptions {
  /** Hosts (hostname, or host:port) besides the registry's own whose token realms are trusted. */
  allowedTokenHosts?: readonly string[];
  /** Lifetime assumed when the token endpoint gives none, in seconds (the spec's default). */
  defaultTokenLifetimeSeconds?: number;
  /** Largest token-endpoint response read, in bytes. Default 1 MiB. */
  maxTokenResponseBytes?: number;
}

interface CachedToken {
  authorization: string;
  expiresAt: number;
}

const DEFAULT_TOKEN_LIFETIME_S = 60;
const DEFAULT_MAX_TOKEN_RESPONSE = 1 << 20;
/** Refresh a token this long before it expires. */
const EXPIRY_MARGIN_MS = 5_000;

/**
 * The authentication state of one registry endpoint: which scheme it asked
 * for, and bearer tokens cached per scope.
 */
export class EndpointAuth {
  private readonly tokens = new Map<string, CachedToken>();
  private basicRequested = false;
  private readonly allowedHosts: Set<string>;

  constructor(
    private readonly registry: URL,
    private readonly transport: Transport,
    private readonly credentials: Credentials | undefined,
    private readonly options: TokenAuthOptions = {},
    private readonly now: () => number = Date.now,
  ) {
    this.allowedHosts = new Set((options.allowedTokenHosts ?? []).map((h) => h.toLowerCase()));
  }

  /** The Authorization value to send with a request needing `scope`, if any is known yet. */
  authorizationFor(scope: string): string | undefined {
    if (this.credentials && 'token' in this.credentials) return `Bearer ${this.credentials.token}`;
    const cached = this.tokens.get(scope);
    if (cached && cached.expiresAt - EXPIRY_MARGIN_MS > this.now()) return cached.authorization;
    if (this.basicRequested) return this.basicHeader();
    return undefined;
  }

  /**
   * Reacts to a 401: obtains what the challenge asks for. Answers true when a
   * retry may succeed, false when there is nothing new to try.
   */
  async handleChallenge(header: string | undefined, scope: string, signal?: AbortSignal): Promise<boolean> {
    const challenges = parseChallenges(header ?? '');
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    if (bearer) {
      if (this.credentials && 'token' in this.credentials) return false;
      await this.fetchToken(bearer, scope, signal);
      return true;
    }
    if (challenges.some((c) => c.scheme === 'basic')) {
      if (!this.credentials || !('username' in this.credentials) || this.basicRequested) return false;
      this.basicRequested = true;
      return true;
    }
    return false;
  }

  private basicHeader(): string | undefined {
    if (!this.credentials || !('username' in this.credentials)) return undefined;
    const { username, password } = this.credentials;
    return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  }

  /** Throws PolicyError unless the realm's host is the registry's own or explicitly allowed. */
  private checkRealm(realm: URL): void {
    const sameHost = realm.hostname.toLowerCase() === this.registry.hostname.toLowerCase();
    const allowed = this.allowedHosts.has(realm.hostname.toLowerCase()) || this.allowedHosts.has(realm.host.toLowerCase());
    if (!sameHost && !allowed) {
      throw new PolicyError(
        `registry ${this.registry.host} asked for a token from ${realm.host}, another host; ` +
          `refusing (add "${realm.hostname}" to allowedTokenHosts to trust it)`,
      );
    }
  }

  private async fetchToken(challenge: Challenge, requestScope: string, signal?: AbortSignal): Promise<void> {
    const realmText = challenge.params.realm;
    if (!realmText) throw new AuthError('Bearer challenge without a realm');
    let realm: URL;
    try {
      realm = new URL(realmText);
    } catch {
      throw new AuthError(`Bearer challenge with an invalid realm "${realmText.slice(0, 200)}"`);
    }
    this.checkRealm(realm);
    const url = new URL(realm.href);
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    const scopes = new Set<string>();
    if (challenge.params.scope) for (const s of challenge.params.scope.split(' ')) if (s) scopes.add(s);
    if (scopes.size === 0 && requestScope) scopes.add(requestScope);
    for (const s of scopes) url.searchParams.append('scope', s);
    const basic = this.basicHeader();
    const res = await this.transport.send({
      method: 'GET',
      url,
      headers: { accept: 'application/json' },
      authorization: basic,
      credentialOrigin: basic ? realm.origin : undefined,
      signal,
    });
    const limit = this.options.maxTokenResponseBytes ?? DEFAULT_MAX_TOKEN_RESPONSE;
    const body = await readBody(res.body, limit, `token endpoint ${redactUrl(url)}`);
    if (res.status !== 200) {
      throw new AuthError(`token endpoint ${redactUrl(url)} answered HTTP ${res.status}`, res.status);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new AuthError(`token endpoint ${redactUrl(url)} answered with invalid JSON`);
    }
    const { token, access_token: accessToken, expires_in: expiresIn } = (parsed ?? {}) as Record<string, unknown>;
    const value = typeof token === 'string' && token ? token : typeof accessToken === 'string' ? accessToken : '';
    if (!value || /[\r\n]/.test(value)) throw new AuthError(`token endpoint ${redactUrl(url)} gave no usable token`);
    const lifetime =
      typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0
        ? expiresIn
        : (this.options.defaultTokenLifetimeSeconds ?? DEFAULT_TOKEN_LIFETIME_S);
    const entry = { authorization: `Bearer ${value}`, expiresAt: this.now() + lifetime * 1000 };
    this.tokens.set(requestScope, entry);
    if (challenge.params.scope) this.tokens.set(challenge.params.scope, entry);
  }
}
