/**
 * The node's name for the v1 framework's error table (src/api/errors.ts): one errno table and
 * one error class for the node and the control plane. `NodeError` is `ApiError`.
 */
export {
  ApiError as NodeError,
  Errno,
  httpStatusForErrno,
  insufficientStorage,
  invalid,
  notFound,
  overQuota,
  notSupported,
  tooManyRequests,
  unauthenticated,
  type ErrnoName,
} from '../api/index.js';
