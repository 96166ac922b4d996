/**
 * The one error table of the node API v1. Every failure that reaches a client
 * carries a Linux errno number (as Unikraft Cloud does per item) and an HTTP
 * status derived from it here, in exactly one place. Anything that is not a
 * `NodeError` is a bug and is answered as a 500 without its message.
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
export class NodeError extends Error {
  constructor(
    readonly errno: number,
    message: string,
    /** HTTP status override (e.g. 401 for a missing token); default derives from errno. */
    readonly httpStatus: number = httpStatusForErrno(errno),
  ) {
    super(message);
    this.name = 'NodeError';
  }
}

export const notFound = (what: string): NodeError => new NodeError(Errno.ENOENT, `${what} not found`);
export const invalid = (message: string): NodeError => new NodeError(Errno.EINVAL, message);
