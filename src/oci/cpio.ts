/**
 * CPIO "newc" (magic 070701) writer for initrds, streamed from a directory tree.
 *
 * Invariant (reproducibility): the archive depends only on the tree's names,
 * contents, modes, link structure, (optionally) owners and mtimes clamped to
 * `sourceDateEpoch`: entries in canonical order (tree.ts: bytewise, parents
 * first, `.` first), names `./path`, inode numbers 1, 2, 3… in that order,
 * device numbers 0, nlink computed from the archive itself, check field 0.
 *
 * Hardlinks share one inode number and only one of them carries the data:
 * by default the last one, as GNU `cpio -o -H newc` writes it. GNU cpio 2.13
 * (`cpio -idm`), busybox cpio and the kernel's initramfs unpacker restore
 * the link either way (checked in cpio.test.ts for GNU cpio); `hardlinkData: 'first'`
 * is there for readers that want the other convention.
 *
 * Device nodes, FIFOs and sockets are skipped (told to `onWarning`): an initrd's
 * /dev is populated at boot.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { walkTree, type TreeEntry, type TreeFilter } from './tree.js';

export interface CpioOptions {
  /** Upper bound for mtimes (SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number;
  /** Keep numeric owners from the tree; default false writes everything as 0:0. */
  keepOwners?: boolean;
  /** Which link of a hardlink group carries the data. Default 'last' (GNU cpio's convention). */
  hardlinkData?: 'first' | 'last';
  /** Leaves out a path (and a directory's contents) when it answers false. */
  filter?: TreeFilter;
  /** Told about entries left out (devices, FIFOs, sockets). */
  onWarning?: (message: string) => void;
  maxEntries?: number;
}

export class CpioError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CpioError';
  }
}

const MAGIC = '070701';
const TRAILER = 'TRAILER!!!';
const MAX_FIELD = 0xffffffff;

const TYPE_BITS: Record<string, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
};

interface CpioHeader {
  ino: number;
  mode: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  size: number;
  name: string;
}

function hex8(v: number, what: string, name: string): string {
  if (!Number.isInteger(v) || v < 0 || v > MAX_FIELD) throw new CpioError(`cpio entry ${name}: ${what} ${v} does not fit newc`);
  return v.toString(16).toUpperCase().padStart(8, '0');
}

function pad4(n: number): Buffer {
  const r = n % 4;
  return r === 0 ? Buffer.alloc(0) : Buffer.alloc(4 - r);
}

/** Encodes one newc header plus its NUL-terminated name, padded to 4 bytes. */
export function encodeCpioHeader(h: CpioHeader): Buffer {
  const name = Buffer.from(`${h.name}\0`);
  const fields = [h.ino, h.mode, h.uid, h.gid, h.nlink, h.mtime, h.size, 0, 0, 0, 0, name.length, 0];
  const what = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'size', 'devmajor', 'devminor', 'rdevmajor', 'rdevminor', 'namesize', 'check'];
  const text = MAGIC + fields.map((v, i) => hex8(v, what[i], h.name)).join('');
  const head = Buffer.concat([Buffer.from(text, 'ascii'), name]);
  return Buffer.concat([head, pad4(head.length)]);
}

async function* fileData(entry: TreeEntry): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of createReadStream(entry.hostPath) as AsyncIterable<Buffer>) {
    seen += chunk.length;
    if (seen > entry.size) throw new CpioError(`${entry.hostPath} grew while being archived`);
    yield chunk;
  }
  if (seen !== entry.size) throw new CpioError(`${entry.hostPath} shrank while being archived`);
  const pad = pad4(entry.size);
  if (pad.length > 0) yield pad;
}

/** The archive's bytes chunk by chunk, ending with the `TRAILER!!!` entry. */
export async function* cpioChunks(root: string, options: CpioOptions = {}): AsyncGenerator<Buffer> {
  const epoch = options.sourceDateEpoch;
  const dataOn = options.hardlinkData ?? 'last';
  const all = await walkTree(root, { filter: options.filter, maxEntries: options.maxEntries });
  const entries: TreeEntry[] = [];
  for (const e of all) {
    if (e.kind === 'file' || e.kind === 'directory' || e.kind === 'symlink') entries.push(e);
    else options.onWarning?.(`skipping ${e.kind} ${e.path}: device nodes, FIFOs and sockets are not put in an initrd`);
  }

  // Link structure as the archive will hold it (after filtering).
  const groupSize = new Map<string, number>();
  const lastOfGroup = new Map<string, string>();
  const subdirs = new Map<string, number>();
  for (const e of entries) {
    if (e.kind === 'directory') {
      if (e.path !== '.') {
        const slash = e.path.lastIndexOf('/');
        const parent = slash < 0 ? '.' : e.path.slice(0, slash);
        subdirs.set(parent, (subdirs.get(parent) ?? 0) + 1);
      }
    } else {
      groupSize.set(e.inodeKey, (groupSize.get(e.inodeKey) ?? 0) + 1);
      lastOfGroup.set(e.inodeKey, e.path);
    }
  }

  const inodes = new Map<string, number>();
  let nextIno = 1;
  for (const e of entries) {
    let ino: number;
    if (e.kind === 'directory') ino = nextIno++;
    else {
      const known = inodes.get(e.inodeKey);
      if (known === undefined) {
        ino = nextIno++;
        inodes.set(e.inodeKey, ino);
      } else ino = known;
    }
    const nlink = e.kind === 'directory' ? 2 + (subdirs.get(e.path) ?? 0) : (groupSize.get(e.inodeKey) ?? 1);
    let carries = true;
    if (e.kind === 'file' && nlink > 1) {
      carries = dataOn === 'last' ? lastOfGroup.get(e.inodeKey) === e.path : e.hardlinkOf === undefined;
    }
    let size = 0;
    let body: Buffer | undefined;
    if (e.kind === 'file' && carries) size = e.size;
    if (e.kind === 'symlink') {
      body = Buffer.from(e.linkTarget as string);
      size = body.length;
    }
    const mtime = epoch !== undefined && e.mtime > epoch ? epoch : Math.max(0, e.mtime);
    yield encodeCpioHeader({
      ino,
      mode: TYPE_BITS[e.kind] | e.mode,
      uid: options.keepOwners ? e.uid : 0,
      gid: options.keepOwners ? e.gid : 0,
      nlink,
      mtime,
      size,
      name: e.path === '.' ? '.' : `./${e.path}`,
    });
    if (body) yield Buffer.concat([body, pad4(body.length)]);
    else if (size > 0) yield* fileData(e);
  }
  yield encodeCpioHeader({ ino: 0, mode: 0, uid: 0, gid: 0, nlink: 1, mtime: 0, size: 0, name: TRAILER });
}

/** A readable byte stream of the newc archive of `root` (see `cpioChunks`). */
export function createCpioStream(root: string, options: CpioOptions = {}): Readable {
  return Readable.from(cpioChunks(root, options), { objectMode: false });
}
