/**
 * Compact JWS/JWT for registry tokens, signed and verified with node:crypto.
 *
 * Invariants of `verifyJwt`, each one a known way tokens were forged
 * (distribution CVE-2025-24976, the "alg: none" and HS256/public-key confusion
 * classes):
 *   - the text is parsed strictly (three canonical base64url parts, JSON
 *     objects, only known header fields, typed claims) before anything else;
 *   - the algorithm must be on the verifier's allow-list (EdDSA, ES256 only —
 *     `none` and every HMAC algorithm can never be listed);
 *   - the key comes only from the pinned set, by `kid`; a header can never bring
 *     its own key (`jwk`, `jku`, `x5c`, `x5u` are refused), and the pinned key
 *     must be of the type the algorithm needs;
 *   - a token signed by any other key fails, even if it reuses a trusted `kid`;
 *   - `iss`, `aud`, `exp` and `nbf` are checked against the verifier's options
 *     and clock, and a lifetime longer than allowed is refused.
 * Whatever the input, `parseJwt` and `verifyJwt` throw `JwtError` and nothing else.
 */
import {
  createHash,
  createPublicKey,
  generateKeyPairSync,
  sign as cryptoSign,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';

export type JwtAlgorithm = 'EdDSA' | 'ES256';
export const JWT_ALGORITHMS: readonly JwtAlgorithm[] = ['EdDSA', 'ES256'];

export type JwtErrorKind =
  | 'malformed'
  | 'algorithm'
  | 'unknown-key'
  | 'signature'
  | 'expired'
  | 'not-yet-valid'
  | 'issuer'
  | 'audience'
  | 'lifetime';

export class JwtError extends Error {
  constructor(
    readonly kind: JwtErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'JwtError';
  }
}

/** One entry of the `access` claim, as in the distribution token spec. */
export interface AccessEntry {
  readonly type: string;
  readonly name: string;
  readonly actions: readonly string[];
}

export interface JwtHeader {
  readonly alg: string;
  readonly kid: string;
  readonly typ?: string;
}

export interface JwtClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly exp: number;
  readonly nbf?: number;
  readonly iat?: number;
  readonly jti?: string;
  readonly access: readonly AccessEntry[];
}

export interface ParsedJwt {
  readonly header: JwtHeader;
  readonly claims: JwtClaims;
  /** `base64url(header) "." base64url(claims)`: the bytes the signature covers. */
  readonly signingInput: string;
  readonly signature: Buffer;
}

/** A private key we sign with; `kid` is derived from the public key. */
export interface SigningKey {
  readonly kid: string;
  readonly alg: JwtAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A public key a verifier pins, looked up by `kid`. */
export interface TrustedKey {
  readonly kid: string;
  readonly alg: JwtAlgorithm;
  readonly publicKey: KeyObject;
}

export const DEFAULT_MAX_JWT_LENGTH = 8192;
const SIGNATURE_LENGTH: Record<JwtAlgorithm, number> = { EdDSA: 64, ES256: 64 };
const B64URL = /^[A-Za-z0-9_-]+$/;
const HEADER_FIELDS = new Set(['alg', 'kid', 'typ']);
const CLAIM_FIELDS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'access']);
const MAX_ACCESS_ENTRIES = 64;
const MAX_CLAIM_STRING = 512;

function malformed(message: string): never {
  throw new JwtError('malformed', message);
}

function b64urlEncode(data: Buffer | string): string {
  return Buffer.from(data).toString('base64url');
}

/** Decodes canonical unpadded base64url only: re-encoding must give back the same text. */
function b64urlDecode(part: string, what: string): Buffer {
  if (part.length === 0 || !B64URL.test(part) || part.length % 4 === 1) malformed(`${what} is not base64url`);
  const buf = Buffer.from(part, 'base64url');
  if (buf.toString('base64url') !== part) malformed(`${what} is not canonical base64url`);
  return buf;
}

function jsonObject(buf: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
  } catch {
    malformed(`${what} is not UTF-8 JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) malformed(`${what} is not a JSON object`);
  return value as Record<string, unknown>;
}

function boundedString(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > MAX_CLAIM_STRING) malformed(`${what} is not a string`);
  return v;
}

function numericDate(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) malformed(`${what} is not a NumericDate`);
  return v;
}

function parseAccess(v: unknown): AccessEntry[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_ACCESS_ENTRIES) malformed('access claim is not a bounded array');
  return v.map((e: unknown, i) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) malformed(`access[${i}] is not an object`);
    const entry = e as Record<string, unknown>;
    for (const k of Object.keys(entry)) {
      if (k !== 'type' && k !== 'name' && k !== 'actions') malformed(`access[${i}] has unknown field`);
    }
    const actions = entry.actions;
    if (!Array.isArray(actions) || actions.length > 16) malformed(`access[${i}].actions is not a bounded array`);
    return Object.freeze({
      type: boundedString(entry.type, `access[${i}].type`),
      name: boundedString(entry.name, `access[${i}].name`),
      actions: Object.freeze(actions.map((a: unknown) => boundedString(a, `access[${i}].actions`))),
    });
  });
}

/** Strict structural parse; checks no signature and no time. */
export function parseJwt(text: unknown, maxLength = DEFAULT_MAX_JWT_LENGTH): ParsedJwt {
  if (typeof text !== 'string') malformed('token is not a string');
  if (text.length > maxLength) malformed(`token longer than ${maxLength} characters`);
  const parts = text.split('.');
  if (parts.length !== 3) malformed('token does not have three parts');
  const [h, c, s] = parts as [string, string, string];
  const header = jsonObject(b64urlDecode(h, 'header'), 'header');
  for (const k of Object.keys(header)) {
    // jwk/jku/x5c/x5u/crit and friends: a token may never choose its own key or extensions.
    if (!HEADER_FIELDS.has(k)) malformed(`header field "${k.slice(0, 20)}" is not allowed`);
  }
  const alg = header.alg;
  if (typeof alg !== 'string' || alg.length === 0 || alg.length > 16) malformed('header alg is missing');
  const kid = boundedString(header.kid, 'header kid');
  if (header.typ !== undefined && header.typ !== 'JWT') malformed('header typ is not JWT');
  const raw = jsonObject(b64urlDecode(c, 'claims'), 'claims');
  for (const k of Object.keys(raw)) {
    if (!CLAIM_FIELDS.has(k)) malformed(`claim "${k.slice(0, 20)}" is not allowed`);
  }
  let aud: string | readonly string[];
  if (Array.isArray(raw.aud)) {
    if (raw.aud.length === 0 || raw.aud.length > 8) malformed('aud is not a bounded array');
    aud = Object.freeze(raw.aud.map((a: unknown) => boundedString(a, 'aud')));
  } else {
    aud = boundedString(raw.aud, 'aud');
  }
  const claims: JwtClaims = Object.freeze({
    iss: boundedString(raw.iss, 'iss'),
    sub: boundedString(raw.sub, 'sub'),
    aud,
    exp: numericDate(raw.exp, 'exp'),
    ...(raw.nbf !== undefined ? { nbf: numericDate(raw.nbf, 'nbf') } : {}),
    ...(raw.iat !== undefined ? { iat: numericDate(raw.iat, 'iat') } : {}),
    ...(raw.jti !== undefined ? { jti: boundedString(raw.jti, 'jti') } : {}),
    access: Object.freeze(parseAccess(raw.access)),
  });
  const signature = b64urlDecode(s, 'signature');
  const headerOut: JwtHeader = Object.freeze(header.typ === 'JWT' ? { alg, kid, typ: 'JWT' } : { alg, kid });
  return Object.freeze({ header: headerOut, claims, signingInput: `${h}.${c}`, signature });
}

function keyFitsAlgorithm(key: KeyObject, alg: JwtAlgorithm): boolean {
  if (key.type !== 'public' && key.type !== 'private') return false;
  if (alg === 'EdDSA') return key.asymmetricKeyType === 'ed25519';
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1';
}

/** The key id: base64url(sha256(SubjectPublicKeyInfo DER)), so it names exactly one public key. */
export function keyIdOf(publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64url');
}

export function generateSigningKey(alg: JwtAlgorithm = 'EdDSA'): SigningKey {
  const pair =
    alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  return Object.freeze({ kid: keyIdOf(pair.publicKey), alg, privateKey: pair.privateKey, publicKey: pair.publicKey });
}

/** Builds a signing key from a private KeyObject (Ed25519 → EdDSA, P-256 → ES256). */
export function signingKeyFrom(privateKey: KeyObject): SigningKey {
  const alg: JwtAlgorithm | undefined = keyFitsAlgorithm(privateKey, 'EdDSA')
    ? 'EdDSA'
    : keyFitsAlgorithm(privateKey, 'ES256')
      ? 'ES256'
      : undefined;
  if (privateKey.type !== 'private' || alg === undefined) {
    throw new TypeError('signing key must be an Ed25519 or P-256 private key');
  }
  const publicKey = createPublicKey(privateKey);
  return Object.freeze({ kid: keyIdOf(publicKey), alg, privateKey, publicKey });
}

export function trustedKeyOf(key: SigningKey): TrustedKey {
  return Object.freeze({ kid: key.kid, alg: key.alg, publicKey: key.publicKey });
}

function rawSign(alg: JwtAlgorithm, data: Buffer, key: KeyObject): Buffer {
  return alg === 'EdDSA'
    ? cryptoSign(null, data, key)
    : cryptoSign('sha256', data, { key, dsaEncoding: 'ieee-p1363' });
}

/** Signs `claims` with `key`; the header carries `alg`, `kid` and `typ: JWT`. */
export function signJwt(claims: JwtClaims, key: SigningKey): string {
  const header = b64urlEncode(JSON.stringify({ alg: key.alg, kid: key.kid, typ: 'JWT' }));
  const body = b64urlEncode(JSON.stringify(claims));
  const input = `${header}.${body}`;
  return `${input}.${b64urlEncode(rawSign(key.alg, Buffer.from(input, 'ascii'), key.privateKey))}`;
}

export interface JwtVerifyOptions {
  /** Pinned public keys; the only keys a token can be checked against. */
  keys: readonly TrustedKey[];
  /** Allowed algorithms (default: both of ours). */
  algorithms?: readonly JwtAlgorithm[];
  issuer: string;
  /** The `aud` this verifier is (our registry's service name). */
  audience: string;
  /** Milliseconds since the epoch (injectable for tests). */
  now?: () => number;
  /** Tolerated clock difference for `exp`/`nbf` (default 30 s). */
  clockSkewSeconds?: number;
  /** Longest accepted `exp - (iat|nbf)` (default 3600 s). */
  maxLifetimeSeconds?: number;
  maxLength?: number;
}

/** Parses and verifies `text`; returns its claims or throws `JwtError`. */
export function verifyJwt(text: unknown, opts: JwtVerifyOptions): JwtClaims {
  const parsed = parseJwt(text, opts.maxLength ?? DEFAULT_MAX_JWT_LENGTH);
  const allowed = (opts.algorithms ?? JWT_ALGORITHMS).filter((a) => JWT_ALGORITHMS.includes(a));
  const alg = parsed.header.alg as JwtAlgorithm;
  if (!allowed.includes(alg)) throw new JwtError('algorithm', `algorithm "${parsed.header.alg}" is not accepted`);
  const key = opts.keys.find((k) => k.kid === parsed.header.kid);
  if (key === undefined) throw new JwtError('unknown-key', 'token key id is not trusted');
  if (key.alg !== alg || !keyFitsAlgorithm(key.publicKey, alg) || key.publicKey.type !== 'public') {
    throw new JwtError('algorithm', 'token algorithm does not match the trusted key');
  }
  if (parsed.signature.length !== SIGNATURE_LENGTH[alg]) throw new JwtError('signature', 'bad signature length');
  let ok = false;
  try {
    const data = Buffer.from(parsed.signingInput, 'ascii');
    ok =
      alg === 'EdDSA'
        ? cryptoVerify(null, data, key.publicKey, parsed.signature)
        : cryptoVerify('sha256', data, { key: key.publicKey, dsaEncoding: 'ieee-p1363' }, parsed.signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new JwtError('signature', 'token signature is not valid');
  const c = parsed.claims;
  const now = Math.floor((opts.now ?? Date.now)() / 1000);
  const skew = opts.clockSkewSeconds ?? 30;
  if (c.iss !== opts.issuer) throw new JwtError('issuer', 'token issuer is not trusted');
  const auds = typeof c.aud === 'string' ? [c.aud] : c.aud;
  if (!auds.includes(opts.audience)) throw new JwtError('audience', 'token is meant for another service');
  if (c.exp <= now - skew) throw new JwtError('expired', 'token has expired');
  if (c.nbf !== undefined && c.nbf > now + skew) throw new JwtError('not-yet-valid', 'token is not valid yet');
  if (c.iat !== undefined && c.iat > now + skew) throw new JwtError('not-yet-valid', 'token was issued in the future');
  const start = c.iat ?? c.nbf ?? now;
  if (c.exp - start > (opts.maxLifetimeSeconds ?? 3600)) throw new JwtError('lifetime', 'token lifetime is too long');
  return c;
}
