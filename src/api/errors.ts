/**
 * The one error table of the v1 API (node and control plane). Every failure
 * that reaches a client carries a Linux errno number (as Unikraft Cloud does
 * per item) and an HTTP status derived from it here, in exactly one place.
 * Anything that is not an `ApiError` (or mapped to one by the API's own
 * `mapError`) is a bug: logged with the request id and answered as a 500
 * without its message.
 */

/** Linux errno numbers used by the API (x86_64 values). */
export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  ENOSYS: 38,
  EOPNOTSUPP: 95,
  ETIMEDOUT: 110,
  ECANCELED: 125,
  EDQUOT: 122,
} as const;

export type ErrnoName = keyof typeof Errno;

const httpStatusByErrno: ReadonlyMap<number, number> = new Map([
  [Errno.EPERM, 403],
  [Errno.EACCES, 403],
  [Errno.ENOENT, 404],
  [Errno.EBUSY, 409],
  [Errno.EEXIST, 409],
  [Errno.EINVAL, 400],
  [Errno.EFBIG, 413],
  [Errno.ENOSPC, 507],
  [Errno.EDQUOT, 507],
  [Errno.ENOSYS, 501],
  [Errno.EOPNOTSUPP, 501],
  [Errno.ETIMEDOUT, 408],
  [Errno.ECANCELED, 409],
  [Errno.EIO, 500],
]);

export function httpStatusForErrno(errno: number): number {
  return httpStatusByErrno.get(errno) ?? 500;
}

/** An expected failure with a message meant for the client. */
export class ApiError extends Error {
  constructor(
    readonly errno: number,
    message: string,
    /** HTTP status override (e.g. 401 for a missing token); default derives from errno. */
    readonly httpStatus: number = httpStatusForErrno(errno),
    /** Response headers the failure needs (`WWW-Authenticate` on 401, `Retry-After` on 429). */
    readonly headers: Readonly<Record<string, string>> = {},
    /** What went wrong underneath (logged with a 5xx, never answered). */
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'ApiError';
  }
}

/** 401: no or unusable credentials; carries the challenge a client answers with a token. */
export const unauthenticated = (message = 'authentication required', challenge = 'Bearer realm="ukc"'): ApiError =>
  new ApiError(Errno.EACCES, message, 401, { 'www-authenticate': challenge });

/** 429: over the per-principal request rate; `Retry-After` says when to come back (whole seconds, ≥ 1). */
export const tooManyRequests = (retryAfterSeconds: number): ApiError =>
  new ApiError(Errno.EBUSY, `too many requests; retry after ${retryAfterSeconds} s`, 429, {
    'retry-after': String(Math.max(1, Math.ceil(retryAfterSeconds))),
  });

/** EDQUOT (122): the change would take the account over one of its quotas. */
export const overQuota = (message: string): ApiError => new ApiError(Errno.EDQUOT, message);

/**
 * 507 ENOSPC: the node's (or control plane's) disk is full. The operator's to fix, not a bug:
 * answered with the envelope, logged with its cause, and the process keeps serving.
 */
export const insufficientStorage = (message: string, cause?: unknown): ApiError =>
  new ApiError(Errno.ENOSPC, message, 507, {}, cause === undefined ? undefined : { cause });

export const notFound = (what: string): ApiError => new ApiError(Errno.ENOENT, `${what} not found`);
export const invalid = (message: string): ApiError => new ApiError(Errno.EINVAL, message);

/** EOPNOTSUPP (95): an operation of the contract this platform does not offer (yet, or at all). */
export const notSupported = (message: string): ApiError => new ApiError(Errno.EOPNOTSUPP, message);
