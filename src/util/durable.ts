/**
 * Crash-safe file system writes. Invariant: after `writeFileAtomic` returns,
 * `path` holds either its old content or all of `data` — never a torn mix —
 * and the new content survives a power loss (file and directory fsynced).
 */
import { execFile } from 'node:child_process';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';

/** fsyncs a directory, so renames and creations inside it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `data` to `path` through a temp sibling: write, fsync, rename, fsync the directory. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
  try {
    const fh = await open(tmp, 'wx', mode);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/**
 * Flushes the whole file system holding `path` (syncfs(2) through coreutils
 * `sync --file-system`): one call instead of an fsync per file of a large tree.
 */
export function syncFileSystem(path: string, timeoutMs = 300_000): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sync', ['--file-system', path], { timeout: timeoutMs }, (err, _out, stderr) => {
      if (err) reject(new Error(`sync --file-system ${path}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}
