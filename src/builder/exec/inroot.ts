/**
 * Path resolution confined to a root directory, the way a chroot would see it:
 * every symlink met on the way is read and resolved against the root, and `..`
 * never climbs above it. The answer is a host path inside `root`, so code that
 * then opens it cannot be led outside by links in the tree (a context holding
 * `link -> /`, a stage's `/lib -> usr/lib`, `WORKDIR /proc/self/fd/N`).
 *
 * The resolution itself is src/oci's (extract.ts); this module adapts it for
 * the executor and maps a path back into the root.
 */
import { resolveInRoot as ociResolveInRoot, ExtractPathError } from '../../oci/index.js';

export class PathEscapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathEscapeError';
  }
}

/**
 * Resolves `path` (absolute inside the root) to a host path under `root`, with
 * src/oci's chroot-style resolver. With `followFinal: false` a symlink in the
 * last component is not followed (for writing a link itself or replacing it).
 */
export async function resolveInRoot(root: string, path: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  try {
    return await ociResolveInRoot(root, path, { followFinal: opts.followFinal ?? true });
  } catch (err) {
    if (err instanceof ExtractPathError) throw new PathEscapeError(err.message);
    throw err;
  }
}

/** The path inside the root (leading `/`) that a resolved host path stands for. */
export function insideRoot(root: string, hostPath: string): string {
  const rel = hostPath.slice(root.replace(/\/+$/, '').length);
  return rel === '' ? '/' : rel;
}
