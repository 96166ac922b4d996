/**
 * The registry's one error-code table and the one function that serialises
 * any error into the spec's envelope: {"errors":[{"code","message","detail"}]}.
 * Errors we do not recognise become 500 UNKNOWN without their message, so
 * internals never leak.
 */
import type { ServerResponse } from 'node:http';
import { isStorageFull } from '../util/index.js';
import { AuthError } from '../auth/index.js';
import { DigestError } from '../oci/index.js';
import { ManifestError, ManifestTooLargeError } from '../oci/index.js';
import {
  BlobNotFoundError,
  DigestMismatchError,
  MissingReferencesError,
  RangeNotSatisfiableError,
  SizeMismatchError,
  TooLargeError,
  UploadNotFoundError,
  UploadOffsetError,
} from '../store/index.js';

export const ERROR_CODES = {
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a blob unknown to the repository' },
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  TAG_INVALID: { status: 400, message: 'invalid tag' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  // Not in the spec's table (which has no code for a server out of space): a documented
  // extension, as the spec's error format allows, so a client can tell "retry once space
  // is freed" from a bug. The status is HTTP's own 507 Insufficient Storage.
  INSUFFICIENT_STORAGE: { status: 507, message: 'the registry is out of storage space' },
  UNKNOWN: { status: 500, message: 'internal server error' },
} as const satisfies Record<string, { status: number; message: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface RegistryErrorOptions {
  detail?: unknown;
  /** Overrides the table's status where the spec wants another (413 for an oversize body). */
  status?: number;
  headers?: Record<string, string>;
  message?: string;
}

export class RegistryError extends Error {
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(
    readonly code: ErrorCode,
    opts: RegistryErrorOptions = {},
  ) {
    super(opts.message ?? ERROR_CODES[code].message);
    this.name = 'RegistryError';
    this.status = opts.status ?? ERROR_CODES[code].status;
    this.detail = opts.detail;
    this.headers = opts.headers ?? {};
  }
}

/** Maps any thrown value to the registry error it stands for (UNKNOWN for the unexpected). */
export function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof AuthError) {
    // src/auth's codes are the spec's own; only the headers travel beside them.
    const headers: Record<string, string> = {};
    if (err.challenge !== undefined) headers['WWW-Authenticate'] = err.challenge;
    if (err.retryAfterSeconds !== undefined) headers['Retry-After'] = String(err.retryAfterSeconds);
    return new RegistryError(err.code, { message: err.message, headers });
  }
  if (err instanceof DigestError) return new RegistryError('DIGEST_INVALID', { message: err.message });
  if (err instanceof DigestMismatchError) {
    return new RegistryError('DIGEST_INVALID', { message: err.message, detail: { digest: err.expected.text } });
  }
  if (err instanceof SizeMismatchError) return new RegistryError('SIZE_INVALID', { message: err.message });
  if (err instanceof TooLargeError) return new RegistryError('SIZE_INVALID', { message: err.message, status: 413 });
  if (err instanceof ManifestTooLargeError) return new RegistryError('MANIFEST_INVALID', { message: err.message, status: 413 });
  if (err instanceof ManifestError) return new RegistryError('MANIFEST_INVALID', { message: err.message });
  if (err instanceof MissingReferencesError) {
    return new RegistryError('MANIFEST_BLOB_UNKNOWN', { detail: err.missing.map((m) => ({ digest: m.digest, kind: m.kind })) });
  }
  if (err instanceof UploadNotFoundError) return new RegistryError('BLOB_UPLOAD_UNKNOWN');
  if (err instanceof BlobNotFoundError) return new RegistryError('BLOB_UNKNOWN');
  if (err instanceof RangeNotSatisfiableError) {
    return new RegistryError('RANGE_INVALID', { headers: { 'Content-Range': `bytes */${err.size}` } });
  }
  if (err instanceof UploadOffsetError) {
    return new RegistryError('RANGE_INVALID', { message: err.message, headers: { Range: uploadRange(err.currentSize) } });
  }
  if (isStorageFull(err)) return new RegistryError('INSUFFICIENT_STORAGE');
  return new RegistryError('UNKNOWN');
}

/** Full-filesystem errors (ENOSPC, EDQUOT, SQLITE_FULL): answered 507, never a bug (src/util). */
export { isStorageFull };

/** The `Range` header of an upload holding `size` bytes (`0-<last byte>`, as distribution writes it). */
export function uploadRange(size: number): string {
  return `0-${Math.max(0, size - 1)}`;
}

export function errorEnvelope(err: RegistryError): string {
  const entry: { code: string; message: string; detail?: unknown } = { code: err.code, message: err.message };
  if (err.detail !== undefined) entry.detail = err.detail;
  return JSON.stringify({ errors: [entry] });
}

/** Writes `err` as the spec's JSON envelope (no body for HEAD). */
export function sendError(res: ServerResponse, err: RegistryError, head: boolean): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = Buffer.from(errorEnvelope(err));
  res.statusCode = err.status;
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', body.length);
  res.end(head ? undefined : body);
}
