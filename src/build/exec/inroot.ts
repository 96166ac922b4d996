/**
 * Path resolution confined to a root directory, the way a chroot would see it:
 * every symlink met on the way is read and resolved against the root, and `..`
 * never climbs above it. The answer is a host path inside `root`, so code that
 * then opens it cannot be led outside by links in the tree (a context holding
 * `link -> /`, a stage's `/lib -> usr/lib`, `WORKDIR /proc/self/fd/N`).
 *
 * (src/oci's extract.ts carries the same idea for layer extraction; this one
 * serves the executor until the two are merged.)
 */
import { lstat, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export const MAX_SYMLINKS = 40;

export class PathEscapeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathEscapeError';
  }
}

/** Splits a (possibly relative) path into clean components, dropping `.` and empty ones. */
function components(path: string): string[] {
  return path.split('/').filter((c) => c !== '' && c !== '.');
}

/**
 * Resolves `path` (absolute inside the root) to a host path under `root`.
 * With `followFinal: false` a symlink in the last component is not followed
 * (for writing a link itself or replacing it).
 */
export async function resolveInRoot(root: string, path: string, opts: { followFinal?: boolean } = {}): Promise<string> {
  const followFinal = opts.followFinal ?? true;
  const done: string[] = [];
  let todo = components(path);
  let links = 0;
  while (todo.length > 0) {
    const part = todo.shift() as string;
    if (part === '..') {
      done.pop();
      continue;
    }
    const candidate = join(root, ...done, part);
    const isLast = todo.length === 0;
    let st;
    try {
      st = await lstat(candidate);
    } catch {
      // Missing: the rest of the path is taken literally (it will be created).
      done.push(part);
      continue;
    }
    if (st.isSymbolicLink() && (!isLast || followFinal)) {
      if (++links > MAX_SYMLINKS) throw new PathEscapeError(`too many symbolic links resolving ${path}`);
      const target = await readlink(candidate);
      if (target.startsWith('/')) done.length = 0;
      todo = [...components(target), ...todo];
      continue;
    }
    done.push(part);
  }
  return join(root, ...done);
}

/** The path inside the root (leading `/`) that a resolved host path stands for. */
export function insideRoot(root: string, hostPath: string): string {
  const rel = hostPath.slice(root.replace(/\/+$/, '').length);
  return rel === '' ? '/' : rel;
}
