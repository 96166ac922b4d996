/**
 * Crash-safe file system writes: the one place the project writes a file durably.
 *
 * Guarantees of every `writeFileAtomic*` here (async and sync alike):
 *  1. the new content goes to a temp file in the SAME directory as the target
 *     (`.<name>.<uuid>.tmp`, created exclusively with the given mode), so the
 *     rename below is atomic (same file system) and never crosses a mount;
 *  2. the temp file is fsynced before it is renamed over the target, so the
 *     name never points at content that is still only in the page cache;
 *  3. the directory is fsynced after the rename, so the new name survives a
 *     power loss;
 *  4. on any failure before the rename completes, the temp file is removed and
 *     the target is untouched.
 * So after a write returns, `path` holds all of the new data and survives a
 * crash; if it throws, `path` holds its old content (or is still absent) —
 * never a torn mix, and no temp file is left behind.
 *
 * `mode` is the creation mode (the umask may narrow it); `exactMode` also
 * chmods the temp file before anything is written, for secrets that must be
 * exactly that mode whatever the umask.
 */
import type * as childProcess from 'node:child_process';
import { createRequire } from 'node:module';
import { closeSync, chmodSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomUUID } from 'node:crypto';

export interface AtomicWriteOptions {
  /** Creation mode of the file (narrowed by the umask unless `exactMode`). Default 0600. */
  mode?: number;
  /** chmod the file to exactly `mode`, whatever the umask. */
  exactMode?: boolean;
}

function options(o: number | AtomicWriteOptions | undefined): Required<AtomicWriteOptions> {
  const opts = typeof o === 'number' ? { mode: o } : (o ?? {});
  return { mode: opts.mode ?? 0o600, exactMode: opts.exactMode ?? false };
}

/** The temp sibling a write of `path` goes through (same directory, so the rename is atomic). */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomUUID()}.tmp`);
}

/** Whether a directory entry's name is one of `tempPathFor`'s temp files (for listings that must skip them). */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

/** fsyncs a file (its content) or a directory (so renames and creations inside it are durable). */
async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The synchronous `fsyncPath`. */
function fsyncPathSync(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** fsyncs a directory, so renames and creations inside it are durable. */
export const fsyncDir: (dir: string) => Promise<void> = fsyncPath;
/** fsyncs a file's content. */
export const fsyncFile: (path: string) => Promise<void> = fsyncPath;
/** The synchronous `fsyncDir`. */
export const fsyncDirSync: (dir: string) => void = fsyncPathSync;
/** The synchronous `fsyncFile`. */
export const fsyncFileSync: (path: string) => void = fsyncPathSync;

/**
 * Makes an already written temp file the content of `path`: fsync it, rename it
 * over `path`, fsync the directory; on failure the temp file is removed. `tmp`
 * must be on the same file system as `path` (best: `tempPathFor(path)`).
 */
export async function commitFileAtomic(tmp: string, path: string): Promise<void> {
  try {
    await fsyncFile(tmp);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await fsyncDir(dirname(path));
}

/** Writes `data` to `path` with the guarantees above. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, mode?: number | AtomicWriteOptions): Promise<void> {
  const opts = options(mode);
  const tmp = tempPathFor(path);
  try {
    const fh = await open(tmp, 'wx', opts.mode);
    try {
      if (opts.exactMode) await fh.chmod(opts.mode);
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
 * Like `writeFileAtomic`, but `write` produces the temp file itself (a stream, a
 * child process): the file at the path it is given is then fsynced, renamed over
 * `path` and the directory fsynced; on failure the temp file is removed.
 */
export async function writeFileAtomicWith(path: string, write: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = tempPathFor(path);
  try {
    await write(tmp);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  await commitFileAtomic(tmp, path);
}

/** The synchronous `writeFileAtomic`, with the same guarantees. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array, mode?: number | AtomicWriteOptions): void {
  const opts = options(mode);
  const tmp = tempPathFor(path);
  try {
    const fd = openSync(tmp, 'wx', opts.mode);
    try {
      if (opts.exactMode) chmodSync(tmp, opts.mode);
      const buf = typeof data === 'string' ? Buffer.from(data) : data;
      let off = 0;
      while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
  fsyncDirSync(dirname(path));
}

/**
 * Flushes the whole file system holding `path` (syncfs(2) through coreutils
 * `sync --file-system`): one call instead of an fsync per file of a large tree.
 */
export function syncFileSystem(path: string, timeoutMs = 300_000): Promise<void> {
  // node:child_process loads here, not with util (imported on every `unikraft` start; see listener.ts).
  const { execFile } = createRequire(import.meta.url)('node:child_process') as typeof childProcess;
  return new Promise((resolve, reject) => {
    execFile('sync', ['--file-system', path], { timeout: timeoutMs }, (err, _out, stderr) => {
      if (err) reject(new Error(`sync --file-system ${path}: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}
