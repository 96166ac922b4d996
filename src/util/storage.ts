/**
 * True for the errors a full filesystem raises: ENOSPC/EDQUOT from node:fs, SQLITE_FULL
 * from a SQLite store. They are the operator's to fix, not bugs: the registry answers 507
 * in the spec's envelope, the v1 APIs 507 with errno ENOSPC, and the process keeps serving
 * (every writer removes its partial bytes on the way out).
 */
export function isStorageFull(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/**
 * True for the errors a peer that went away raises on a stream we were reading or writing
 * (a client closing a blob GET early, a reset mid-upload): not a bug of ours, nothing to
 * answer, never logged as an internal error.
 */
export function isPeerGone(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  return (
    code === 'ERR_STREAM_PREMATURE_CLOSE' ||
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    code === 'ECONNABORTED' ||
    code === 'ERR_STREAM_DESTROYED' ||
    (err as { message?: unknown }).message === 'aborted'
  );
}
