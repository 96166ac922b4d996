/**
 * Walks a directory tree into the canonical entry order every archive writer
 * here uses (tar layers, cpio initrds, layout tars).
 *
 * Invariant (reproducibility): entries are sorted by the bytes of their relative
 * path (like `LC_ALL=C sort`), which puts every parent before its children; the
 * root itself is the entry with path `.` and comes first; among paths that share
 * one (dev, ino), the first in that order is the primary and the others name it
 * in `hardlinkOf`. Only metadata is held in memory, never file contents.
 */
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export type TreeEntryKind = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface TreeEntry {
  /** Relative POSIX path from the root, `.` for the root itself, never with `./` or a trailing `/`. */
  readonly path: string;
  /** Absolute host path to read from. */
  readonly hostPath: string;
  readonly kind: TreeEntryKind;
  /** Permission bits incl. setuid/setgid/sticky (`mode & 0o7777`). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  readonly size: number;
  /** Modification time in whole seconds since the epoch. */
  readonly mtime: number;
  readonly nlink: number;
  /** `dev:ino`, equal for hardlinks of one file. */
  readonly inodeKey: string;
  readonly rdevMajor: number;
  readonly rdevMinor: number;
  /** Symlink target, as stored. */
  readonly linkTarget: string | undefined;
  /** For a second or later hardlink (non-directories), the path of the primary. */
  readonly hardlinkOf: string | undefined;
}

/** Called for each path below the root; answering false leaves it (and a directory's contents) out. */
export type TreeFilter = (path: string, entry: TreeEntry) => boolean;

export interface WalkTreeOptions {
  filter?: TreeFilter;
  /** Upper bound on entries, so a runaway tree fails instead of filling memory. */
  maxEntries?: number;
}

export const DEFAULT_TREE_MAX_ENTRIES = 2_000_000;

export class TreeLimitError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TreeLimitError';
  }
}

function kindOf(st: { isFile(): boolean; isDirectory(): boolean; isSymbolicLink(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isFIFO(): boolean }): TreeEntryKind {
  if (st.isFile()) return 'file';
  if (st.isDirectory()) return 'directory';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'socket';
}

/** Linux dev_t split (glibc's gnu_dev_major/minor). */
export function devMajor(rdev: bigint): number {
  return Number(((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn));
}
export function devMinor(rdev: bigint): number {
  return Number((rdev & 0xffn) | ((rdev >> 12n) & ~0xffn));
}

async function statEntry(hostPath: string, path: string): Promise<TreeEntry> {
  const st = await lstat(hostPath, { bigint: true });
  const kind = kindOf(st);
  return {
    path,
    hostPath,
    kind,
    mode: Number(st.mode & 0o7777n),
    uid: Number(st.uid),
    gid: Number(st.gid),
    size: kind === 'file' ? Number(st.size) : 0,
    mtime: Number(st.mtimeNs / 1_000_000_000n),
    nlink: Number(st.nlink),
    inodeKey: `${st.dev}:${st.ino}`,
    rdevMajor: devMajor(st.rdev),
    rdevMinor: devMinor(st.rdev),
    linkTarget: kind === 'symlink' ? await readlink(hostPath) : undefined,
    hardlinkOf: undefined,
  };
}

/** Compares two relative paths by their UTF-8 bytes. */
export function compareBytewise(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Lists `root` (which must be a directory; symlinks inside are not followed) in canonical order. */
export async function walkTree(root: string, options: WalkTreeOptions = {}): Promise<TreeEntry[]> {
  const maxEntries = options.maxEntries ?? DEFAULT_TREE_MAX_ENTRIES;
  const rootEntry = await statEntry(root, '.');
  if (rootEntry.kind !== 'directory') throw new Error(`walkTree: ${root} is not a directory`);
  const out: TreeEntry[] = [rootEntry];
  const pending: TreeEntry[] = [rootEntry];
  while (pending.length > 0) {
    const dir = pending.pop() as TreeEntry;
    const names = await readdir(dir.hostPath);
    for (const name of names) {
      const path = dir.path === '.' ? name : `${dir.path}/${name}`;
      const entry = await statEntry(join(dir.hostPath, name), path);
      if (options.filter && !options.filter(path, entry)) continue;
      if (out.length >= maxEntries) throw new TreeLimitError(`tree ${root} has more than ${maxEntries} entries`);
      out.push(entry);
      if (entry.kind === 'directory') pending.push(entry);
    }
  }
  const rest = out.slice(1).sort((a, b) => compareBytewise(a.path, b.path));
  const primary = new Map<string, string>();
  const result: TreeEntry[] = [rootEntry];
  for (const e of rest) {
    if (e.kind !== 'directory' && e.nlink > 1) {
      const first = primary.get(e.inodeKey);
      if (first === undefined) primary.set(e.inodeKey, e.path);
      else {
        result.push({ ...e, hardlinkOf: first });
        continue;
      }
    }
    result.push(e);
  }
  return result;
}

/**
 * Compares two strings by their UTF-8 bytes without encoding them: UTF-16 code units order
 * like code points (hence like UTF-8 bytes) except surrogates, which are moved above the rest
 * of the BMP. Same answer as `compareBytewise`, no allocation (it runs once per comparison of
 * a sort over a whole directory).
 */
export function compareUtf8(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/**
 * The same entries in the same canonical order as `walkTree`, produced one at a time, holding
 * only the names of the directories being walked and the hardlinks seen (not every entry's
 * metadata: `unikraft images import` of an archive of 200,000 entries used to hold them all).
 *
 * Why the order matches: inside one directory every path below a child directory `d` starts
 * with `d/`, so that subtree sorts as one block exactly where the key `d/` sorts among the
 * siblings' names (no name contains `/`), while `d` itself sorts at `d`, always before its
 * block. Walking the sorted names and emitting each pending directory's block when its key
 * comes up yields the bytewise order of full paths.
 */
export async function* walkTreeStream(root: string, options: WalkTreeOptions = {}): AsyncGenerator<TreeEntry> {
  const maxEntries = options.maxEntries ?? DEFAULT_TREE_MAX_ENTRIES;
  const rootEntry = await statEntry(root, '.');
  if (rootEntry.kind !== 'directory') throw new Error(`walkTree: ${root} is not a directory`);
  yield rootEntry;
  let count = 1;
  const primary = new Map<string, string>();
  async function* walk(dirHost: string, dirPath: string): AsyncGenerator<TreeEntry> {
    const names = (await readdir(dirHost)).sort(compareUtf8);
    /** Child directories whose blocks are still to come, ordered by `name/`. */
    const pending: string[] = [];
    const block = async function* (name: string): AsyncGenerator<TreeEntry> {
      yield* walk(join(dirHost, name), dirPath === '.' ? name : `${dirPath}/${name}`);
    };
    for (const name of names) {
      while (pending.length > 0 && compareUtf8(`${pending[0] as string}/`, name) < 0) yield* block(pending.shift() as string);
      const path = dirPath === '.' ? name : `${dirPath}/${name}`;
      let entry = await statEntry(join(dirHost, name), path);
      if (options.filter && !options.filter(path, entry)) continue;
      if (count >= maxEntries) throw new TreeLimitError(`tree ${root} has more than ${maxEntries} entries`);
      count++;
      if (entry.kind === 'directory') {
        const key = `${name}/`;
        let at = pending.length;
        while (at > 0 && compareUtf8(`${pending[at - 1] as string}/`, key) > 0) at--;
        pending.splice(at, 0, name);
      } else if (entry.nlink > 1) {
        const first = primary.get(entry.inodeKey);
        if (first === undefined) primary.set(entry.inodeKey, path);
        else entry = { ...entry, hardlinkOf: first };
      }
      yield entry;
    }
    while (pending.length > 0) yield* block(pending.shift() as string);
  }
  yield* walk(root, '.');
}
