/**
 * The typed errors of src/auth. Callers map them to their own envelopes in one
 * place: the registry to its OCI error table (`UNAUTHORIZED` 401 with the
 * `WWW-Authenticate` challenge, `DENIED` 403, `TOOMANYREQUESTS` 429 with
 * `Retry-After`), the platform API to its v1 envelope.
 *
 * Messages never contain a secret (token text, password or hash).
 */

export type AuthErrorCode = 'UNAUTHORIZED' | 'DENIED' | 'TOOMANYREQUESTS';

const STATUS: Record<AuthErrorCode, number> = { UNAUTHORIZED: 401, DENIED: 403, TOOMANYREQUESTS: 429 };

export interface AuthErrorOptions {
  /** For UNAUTHORIZED: the `WWW-Authenticate` header value the response must carry. */
  challenge?: string;
  /** For TOOMANYREQUESTS: whole seconds for the `Retry-After` header (≥ 1). */
  retryAfterSeconds?: number;
}

/** A request that may not proceed: unauthenticated, forbidden or over a limit. */
export class AuthError extends Error {
  readonly status: number;
  readonly challenge: string | undefined;
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: AuthErrorCode,
    message: string,
    options: AuthErrorOptions = {},
  ) {
    super(message);
    this.name = 'AuthError';
    this.status = STATUS[code];
    this.challenge = options.challenge;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Input that does not follow a grammar of ours (names, scopes, token texts). */
export class AuthInputError extends Error {
  constructor(
    readonly what: 'account-name' | 'repository-name' | 'scope' | 'token-scope' | 'quota' | 'credentials' | 'token-label',
    message: string,
  ) {
    super(message);
    this.name = 'AuthInputError';
  }
}

/** A store operation that conflicts with existing state (duplicate account, unknown account). */
export class AccountError extends Error {
  constructor(
    readonly kind: 'exists' | 'not-found' | 'last-root',
    message: string,
  ) {
    super(message);
    this.name = 'AccountError';
  }
}
