/**
 * Removes a directory tree with memory bounded by the depth of the tree, not its size.
 *
 * Why not `fs.promises.rm(path, { recursive: true })`: Node 20's recursive rm starts the
 * removal of every entry of a directory at once (one promise and one libuv request each):
 * measured here, 174 MiB RSS to remove 50,000 empty files and ~480 MiB for 200,000 — it was
 * most of `unikraft images import`'s peak. This walks with `opendir` (a small buffer of names
 * at a time) and unlinks one entry after the other.
 */
import { lstat, opendir, rm, rmdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

function code(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

/** Removes `path` and everything below it (no link is followed); a missing path is fine. */
export async function removeTree(path: string): Promise<void> {
  let st;
  try {
    st = await lstat(path);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    throw err;
  }
  if (!st.isDirectory()) {
    await rm(path, { force: true });
    return;
  }
  for (let attempt = 0; ; attempt++) {
    await emptyDirectory(path);
    try {
      await rmdir(path);
      return;
    } catch (err) {
      if (code(err) === 'ENOENT') return;
      // An entry added meanwhile, or one a directory stream skipped while entries went: once more.
      if (code(err) !== 'ENOTEMPTY' || attempt >= 3) throw err;
    }
  }
}

/** Empties `dir` depth first, one entry at a time. */
async function emptyDirectory(dir: string): Promise<void> {
  const subdirs: string[] = [];
  const handle = await opendir(dir, { bufferSize: 128 });
  for await (const entry of handle) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) subdirs.push(entry.name);
    else {
      try {
        await unlink(p);
      } catch (err) {
        if (code(err) !== 'ENOENT') throw err;
      }
    }
  }
  // Names of subdirectories only (files went as they were read): bounded by the widest level of directories.
  for (const name of subdirs) await removeTree(join(dir, name));
}
