/**
 * COPY and ADD file operations on a stage root filesystem.
 *
 * Invariants:
 * - Every destination path is resolved with resolveInRoot, so links already in
 *   the stage (or written by an earlier step) cannot lead a write outside it;
 *   a non-directory is written by replacing what is there (never through a link).
 * - Every source path is resolved inside its own root (the build context or the
 *   source stage's rootfs): a context symlink to `/` means the context root, a
 *   stage's `/lib -> usr/lib` is followed inside that stage.
 * - Files keep mode (07777 bits) and mtime; owner is 0:0 unless --chown.
 */
import { copyFile, chmod, lchown, lstat, lutimes, mkdir, readdir, readlink, rm, symlink, utimes, constants } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { posix, join } from 'node:path';
import { insideRoot, resolveInRoot } from './inroot.js';
import type { CopyOperation } from '../context.js';

export interface Owner {
  uid: number;
  gid: number;
}

export interface CopySource {
  /** The root the source path lives in (context dir or a stage's rootfs). */
  root: string;
  /** Path inside that root, as named (after wildcard expansion). */
  path: string;
  /** Host path after following links (inside `root`). */
  hostPath: string;
  isDir: boolean;
}

export interface CopyOptions {
  owner: Owner;
  chmod?: number;
  /** Paths (relative to the source root, no leading slash) to leave out: .dockerignore. */
  excluded?: (relPath: string) => boolean;
  warn?: (message: string) => void;
}

export class CopyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CopyError';
  }
}

/** Resolves a named source (following a link named as the source) inside its root. */
export async function resolveSource(root: string, path: string): Promise<CopySource> {
  const hostPath = await resolveInRoot(root, path);
  let st;
  try {
    st = await lstat(hostPath);
  } catch {
    throw new CopyError(`source ${path} does not exist`);
  }
  return { root, path, hostPath, isDir: st.isDirectory() };
}

/** Creates the directory `path` inside `root` (and its parents: 0755, 0:0, as Docker does). */
export async function mkdirInRoot(root: string, path: string, owner: Owner = { uid: 0, gid: 0 }): Promise<string> {
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  let inside = '/';
  let host = root;
  for (const part of parts) {
    inside = posix.join(inside, part);
    host = await resolveInRoot(root, inside);
    let st;
    try {
      st = await lstat(host);
    } catch {
      // Missing components after a followed link are plain names, so a recursive
      // mkdir of the resolved host path stays inside the root.
      await mkdir(host, { mode: 0o755, recursive: true });
      await lchown(host, owner.uid, owner.gid);
      continue;
    }
    if (!st.isDirectory()) throw new CopyError(`cannot create directory ${inside}: a file is in the way`);
  }
  return host;
}

/** Gives a created directory the source directory's mode and mtime (and the copy's owner). */
export async function copyDirMeta(sourceDir: string, host: string, opts: CopyOptions): Promise<void> {
  const st = await lstat(sourceDir);
  await applyMeta(host, st.mode, st.mtime, opts, false);
}

/** Copies a non-directory (file or symlink, not followed) to `dest` inside `destRoot`. */
export async function copyPath(from: string, destRoot: string, dest: string, opts: CopyOptions): Promise<number> {
  const st = await lstat(from);
  const host = await resolveInRoot(destRoot, dest, { followFinal: false });
  const existing = await lstat(host).catch(() => undefined);
  if (existing?.isDirectory()) throw new CopyError(`cannot copy a file over the directory ${dest}`);
  if (existing) await rm(host, { force: true });
  if (st.isSymbolicLink()) {
    await symlink(await readlink(from), host);
    await lchown(host, opts.owner.uid, opts.owner.gid);
    await lutimes(host, st.atime, st.mtime);
    return 1;
  }
  if (!st.isFile()) {
    opts.warn?.(`skipping ${dest}: not a regular file, directory or symlink`);
    return 0;
  }
  await copyFile(from, host, constants.COPYFILE_FICLONE);
  await applyMeta(host, st.mode, st.mtime, opts, true);
  return 1;
}

async function applyMeta(host: string, mode: number, mtime: Date, opts: CopyOptions, _isFile: boolean): Promise<void> {
  // chown first: it clears setuid/setgid, which chmod then restores.
  await lchown(host, opts.owner.uid, opts.owner.gid);
  await chmod(host, opts.chmod ?? mode & 0o7777);
  await utimes(host, mtime, mtime);
}

/**
 * Digest of what a set of sources holds: paths, types, modes, link targets and
 * file contents (not mtimes, which do not reach the image), for the cache key.
 */
export async function digestSources(sources: CopySource[], excluded?: (rel: string) => boolean): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (host: string, root: string, label: string): Promise<void> => {
    const st = await lstat(host);
    const rel = insideRoot(root, host).replace(/^\//, '');
    if (label !== '' && excluded?.(rel)) return;
    hash.update(`${label}\0${st.mode}\0`);
    if (st.isDirectory()) {
      for (const name of (await readdir(host)).sort()) await visit(join(host, name), root, `${label}/${name}`);
    } else if (st.isSymbolicLink()) {
      hash.update(`L${await readlink(host)}\0`);
    } else if (st.isFile()) {
      hash.update(`F${st.size}\0`);
      for await (const chunk of createReadStream(host)) hash.update(chunk as Buffer);
    }
  };
  for (const s of sources) {
    hash.update(`S${s.path}\0`);
    await visit(s.hostPath, s.root, '');
  }
  return `sha256:${hash.digest('hex')}`;
}

async function hashFile(hash: ReturnType<typeof createHash>, path: string): Promise<void> {
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
}

/** Digest of planned copy operations: destinations, kinds, modes, link targets and file contents. */
export async function digestOperations(ops: readonly CopyOperation[]): Promise<string> {
  const hash = createHash('sha256');
  for (const op of ops) {
    hash.update(`${op.kind}\0${op.dest}\0`);
    if (op.kind === 'url') hash.update(`${op.url}\0`);
    else if (op.kind === 'symlink') hash.update(`${op.target}\0`);
    else if (op.kind === 'directory') {
      if (op.source) hash.update(`${(await lstat(op.source)).mode}\0`);
    } else {
      const st = await lstat(op.source);
      hash.update(`${st.mode}\0${st.size}\0${op.placeIntoExistingDir ?? ''}\0`);
      await hashFile(hash, op.source);
    }
  }
  return `sha256:${hash.digest('hex')}`;
}

/** Digest of whole files (ADD archives). */
export async function digestFiles(paths: readonly string[]): Promise<string> {
  const hash = createHash('sha256');
  for (const p of paths) {
    hash.update(`${p}\0`);
    await hashFile(hash, p);
  }
  return `sha256:${hash.digest('hex')}`;
}
