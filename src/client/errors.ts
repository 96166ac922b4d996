/**
 * Typed errors of the registry client. Each carries what a caller needs to
 * decide (HTTP status, the registry's error codes from the spec's envelope
 * `{errors:[{code,message,detail}]}`), and never a credential.
 */

/** One entry of the distribution-spec error envelope. */
export interface RegistryErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/** Base class: every error thrown by src/client is one of these. */
export class RegistryClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryClientError';
  }
}

/** The registry answered with an unexpected HTTP status. */
export class RegistryError extends RegistryClientError {
  constructor(
    readonly status: number,
    readonly method: string,
    /** The request URL with any query string and userinfo removed. */
    readonly url: string,
    readonly errors: readonly RegistryErrorEntry[],
  ) {
    const first = errors[0];
    const what = first ? `${first.code}: ${first.message}` : `HTTP ${status}`;
    super(`${method} ${url}: ${what}${first ? ` (HTTP ${status})` : ''}`);
    this.name = 'RegistryError';
  }

  /** The first error code, or undefined when the body held no envelope. */
  get code(): string | undefined {
    return this.errors[0]?.code;
  }

  hasCode(code: string): boolean {
    return this.errors.some((e) => e.code === code);
  }
}

/** Content did not hash to the digest it was asked for (or had the wrong size). */
export class DigestMismatchError extends RegistryClientError {
  constructor(
    readonly expected: string,
    readonly actual: string,
    readonly expectedSize?: number,
    readonly actualSize?: number,
  ) {
    const size =
      expectedSize !== undefined && actualSize !== undefined && expectedSize !== actualSize
        ? ` (size ${actualSize}, expected ${expectedSize})`
        : '';
    super(`content digest mismatch: expected ${expected}, got ${actual}${size}`);
    this.name = 'DigestMismatchError';
  }
}

/** A request the security policy refused before anything was sent (row 10 of security-cases.md). */
export class PolicyError extends RegistryClientError {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyError';
  }
}

/** Authentication failed: bad challenge, token endpoint refused, or still 401 after a fresh token. */
export class AuthError extends RegistryClientError {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

/** The network failed (connection refused, reset, timeout) after all retries. */
export class TransportError extends RegistryClientError {
  constructor(
    message: string,
    override readonly cause?: unknown,
  ) {
    super(message);
    this.name = 'TransportError';
  }
}

/** A response broke the protocol (missing Location, malformed Range, oversized document). */
export class ProtocolError extends RegistryClientError {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

const MAX_ENVELOPE_ENTRIES = 20;

/** Parses an error body leniently (registries differ); answers [] when it is not the spec's envelope. */
export function parseErrorEnvelope(body: string): RegistryErrorEntry[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return [];
  }
  if (typeof parsed !== 'object' || parsed === null) return [];
  const list = (parsed as { errors?: unknown }).errors;
  if (!Array.isArray(list)) return [];
  const out: RegistryErrorEntry[] = [];
  for (const e of list.slice(0, MAX_ENVELOPE_ENTRIES)) {
    if (typeof e !== 'object' || e === null) continue;
    const { code, message, detail } = e as { code?: unknown; message?: unknown; detail?: unknown };
    if (typeof code !== 'string') continue;
    out.push({ code: code.slice(0, 100), message: typeof message === 'string' ? message.slice(0, 1000) : '', detail });
  }
  return out;
}
