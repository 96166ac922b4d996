/**
 * The registry with accounts: src/auth plugged into the registry's access
 * hooks, as one call (`createRegistryAuth`) for `ukcd registry --auth`,
 * `ukcd dev` and the control plane.
 *
 *   - `GET|POST /v2/token`: the Docker/OCI token endpoint (Basic or Bearer API
 *     token in, a short-lived signed JWT out, granting what the policy allows
 *     of the asked scopes);
 *   - every /v2 route: `Bearer <registry token>` (verified against pinned keys
 *     with an allow-listed algorithm), `Bearer ukc_…` or `Basic account:ukc_…`;
 *     anonymous requests get 401 with the token-flow challenge
 *     (`WWW-Authenticate: Bearer realm=…,service=…[,scope=…]`);
 *   - namespaces per owner (`alice/*` is alice's), `official/*` readable by every
 *     account and written by root, everything else root's (see src/auth/policy.ts);
 *   - a cross-repository mount without pull on `from` becomes a plain upload;
 *   - the catalog is for root only;
 *   - request rates per principal (429 TOOMANYREQUESTS + Retry-After) come from
 *     src/auth's limiter; open upload sessions per principal from the registry's
 *     own `maxUploadsPerPrincipal` (one mechanism each).
 *
 * On-disk layout when `dataDir` is given (each path may be set on its own):
 *   <dataDir>/auth.db                    accounts and hashed API tokens (SQLite)
 *   <dataDir>/root-token                 root's API token, mode 0600, written at first start
 *   <dataDir>/registry-signing-key.pem   the token signing key, mode 0600
 */
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import {
  ANONYMOUS_SUBJECT,
  AccountStore,
  AuthError,
  createRegistryAuthenticator,
  loadOrCreateSigningKey,
  Policy,
  RequestRateLimiter,
  type Principal as AuthPrincipal,
  type RegistryAuthenticator,
  type RepositoryReadersLookup,
  type RequestRateLimitOptions,
  type ResourceScope,
  type SigningKey,
  type TrustedKey,
} from '../auth/index.js';
import { ANONYMOUS, type Principal, type RegistryAccessControl } from './auth.js';

export const DEFAULT_REGISTRY_SERVICE = 'ukc-registry';
export const DEFAULT_TOKEN_ISSUER = 'ukc';
export const ACCOUNTS_DB_FILE = 'auth.db';
export const ROOT_TOKEN_FILE = 'root-token';
export const SIGNING_KEY_FILE = 'registry-signing-key.pem';
/**
 * Requests per principal on the registry. One image push is ~4 requests per blob plus one per
 * chunk, so the burst covers a large push at once and the rate a steady stream of them.
 */
export const DEFAULT_REGISTRY_REQUEST_RATE: Readonly<Required<Pick<RequestRateLimitOptions, 'ratePerSecond' | 'burst'>>> = Object.freeze({
  ratePerSecond: 100,
  burst: 400,
});

export interface RegistryAuthOptions {
  /** The registry's public base URL (`http://host:port`); the token realm is `<publicUrl>/v2/token`. */
  publicUrl: string;
  /** Default home of the accounts database, root token file and signing key (see the file comment). */
  dataDir?: string;
  /** An open account store to share (not closed by `close`); else one is opened at `accountsDbPath`. */
  accounts?: AccountStore;
  /** Default `<dataDir>/auth.db`. */
  accountsDbPath?: string;
  /** Where root's token is written at first start; default `<dataDir>/root-token`. Without either, no root is created. */
  rootTokenFile?: string;
  /** The token signing key; else loaded from (or created at) `signingKeyFile`. */
  signingKey?: SigningKey;
  /** Default `<dataDir>/registry-signing-key.pem`. */
  signingKeyFile?: string;
  /** More pinned public keys whose tokens are accepted (e.g. the control plane's). */
  trustedKeys?: readonly TrustedKey[];
  /** The service name in the challenge and the tokens' audience (default `ukc-registry`). */
  service?: string;
  /** The tokens' issuer (default `ukc`). */
  issuer?: string;
  /** Let requests without credentials pull `official/*` (default false). */
  anonymousPullOfficial?: boolean;
  /** Per-principal request rate (default DEFAULT_REGISTRY_REQUEST_RATE); `false` turns it off. */
  rateLimit?: RequestRateLimitOptions | false;
  /** Lifetime of issued registry tokens in seconds (default 300, at most 3600). */
  tokenTtlSeconds?: number;
  /** Readers of a repository besides its owner (an image's `users`). */
  repositoryReaders?: RepositoryReadersLookup;
  now?: () => number;
}

export interface RegistryAuth extends Required<RegistryAccessControl> {
  readonly accounts: AccountStore;
  readonly authenticator: RegistryAuthenticator;
  /** The token endpoint's URL, as the challenge names it. */
  readonly realm: string;
  readonly service: string;
  /** Where root's token lives (when a root account is managed here). */
  readonly rootTokenFile: string | undefined;
  /** True when this start created root's token file. */
  readonly rootTokenWritten: boolean;
  /** Closes the account store when it was opened here. */
  close(): void;
}

const CATALOG_SCOPE: ResourceScope = Object.freeze({ type: 'other', resourceType: 'registry', name: 'catalog', actions: ['*'] });

function registryPrincipal(p: AuthPrincipal): Principal {
  if (p.kind === 'anonymous') return ANONYMOUS;
  return Object.freeze({ name: p.name, anonymous: p.kind === 'grant' && p.name === ANONYMOUS_SUBJECT });
}

function required(value: string | undefined, dataDir: string | undefined, file: string, what: string): string {
  if (value !== undefined) return value;
  if (dataDir === undefined) throw new TypeError(`createRegistryAuth needs ${what} or dataDir`);
  return join(dataDir, file);
}

/** Builds the registry's access control from accounts and tokens; pass it as `access` to `createRegistry`. */
export function createRegistryAuth(opts: RegistryAuthOptions): RegistryAuth {
  const base = new URL(opts.publicUrl);
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new TypeError('publicUrl must be an http(s) URL');
  const realm = `${base.origin}${base.pathname.replace(/\/+$/, '')}/v2/token`;
  const service = opts.service ?? DEFAULT_REGISTRY_SERVICE;

  const ownsAccounts = opts.accounts === undefined;
  let accounts: AccountStore;
  if (opts.accounts !== undefined) accounts = opts.accounts;
  else {
    const path = required(opts.accountsDbPath, opts.dataDir, ACCOUNTS_DB_FILE, 'accounts or accountsDbPath');
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    accounts = new AccountStore({ path });
  }
  try {
    const rootTokenFile = opts.rootTokenFile ?? (opts.dataDir !== undefined ? join(opts.dataDir, ROOT_TOKEN_FILE) : undefined);
    const rootTokenWritten = rootTokenFile !== undefined && accounts.ensureRootAccount(rootTokenFile).tokenWritten;
    const signingKey = opts.signingKey ?? loadOrCreateSigningKey(required(opts.signingKeyFile, opts.dataDir, SIGNING_KEY_FILE, 'signingKey or signingKeyFile'));
    const authn = createRegistryAuthenticator({
      realm,
      service,
      issuer: opts.issuer ?? DEFAULT_TOKEN_ISSUER,
      policy: new Policy({ anonymousPullOfficial: opts.anonymousPullOfficial ?? false }),
      accounts,
      signingKey,
      ...(opts.trustedKeys ? { trustedKeys: opts.trustedKeys } : {}),
      ...(opts.repositoryReaders ? { repositoryReaders: opts.repositoryReaders } : {}),
      ...(opts.tokenTtlSeconds !== undefined ? { tokenTtlSeconds: opts.tokenTtlSeconds } : {}),
      rateLimiter: opts.rateLimit === false ? false : new RequestRateLimiter({ ...DEFAULT_REGISTRY_REQUEST_RATE, ...opts.rateLimit, ...(opts.now ? { now: opts.now } : {}) }),
      ...(opts.now ? { now: opts.now } : {}),
    });

    return {
      accounts,
      authenticator: authn,
      realm,
      service,
      rootTokenFile,
      rootTokenWritten,
      async authorize(req, need) {
        if (need.catalog === true) {
          let p: AuthPrincipal;
          try {
            p = await authn.authorizeBase(req);
          } catch (e) {
            // Name the scope a client must ask for, as for any other route.
            if (e instanceof AuthError && e.code === 'UNAUTHORIZED' && req.headers.authorization === undefined) {
              throw new AuthError('UNAUTHORIZED', e.message, { challenge: authn.challenge([CATALOG_SCOPE]) });
            }
            throw e;
          }
          if (!authn.mayListCatalog(p)) throw new AuthError('DENIED', 'the catalog is for root only');
          return registryPrincipal(p);
        }
        if (need.repository === undefined || need.actions.length === 0) return registryPrincipal(await authn.authorizeBase(req));
        return registryPrincipal(await authn.authorize(req, { repository: need.repository, actions: need.actions }));
      },
      async mayMount(req, _principal, target, source) {
        let p: AuthPrincipal;
        try {
          p = authn.authenticate(req.headers);
        } catch {
          return false;
        }
        return (await authn.mountDecision(p, target, source)) === 'mount';
      },
      tokenEndpoint: (req, res) => authn.tokenEndpoint(req, res),
      close() {
        if (ownsAccounts) accounts.close();
      },
    };
  } catch (e) {
    if (ownsAccounts) accounts.close();
    throw e;
  }
}
