/**
 * Kraftfile `rootfs` given as a file: a tarball (plain, gzip or zstd), a CPIO
 * newc archive, or an EROFS image. Turns it into a directory tree the packager
 * can lay over a runtime's base rootfs and re-encode, or (EROFS kept as EROFS)
 * checks it so it can be used as the initrd byte for byte.
 *
 * Invariants:
 * - Archives are untrusted: tarballs and CPIO archives go through src/oci's
 *   confined extractor (nothing outside the destination is ever written, parents
 *   resolve inside it, final components are never followed) with named limits.
 * - An EROFS image is extracted by `fsck.erofs --extract` inside a bubblewrap
 *   sandbox in which the whole file system is read-only except the fresh
 *   destination directory, so a crafted image (duplicate names, a symlink then
 *   a write through it) can at worst scribble inside that directory.
 * - The destination must not exist yet; on failure it is removed.
 * - The app key of a file rootfs is its kind and the SHA-256 of its bytes, so
 *   the same file gives the same tree and the same image (no mtimes involved).
 */
import { createReadStream } from 'node:fs';
import { open, rm, stat, mkdir } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { DEFAULT_EXTRACT_LIMITS, extractTar, type ExtractLimits } from '../../oci/index.js';
import { extractCpio } from '../../oci/index.js';
import { runTool } from '../package/initrd.js';

export type RootfsFileKind = 'tarball' | 'cpio' | 'erofs';

export interface RootfsFileOptions {
  /** Caps for extracting a tarball or CPIO rootfs (bytes, entries, depth, name length). */
  limits?: Partial<ExtractLimits>;
  /** Largest EROFS image accepted, in bytes. */
  maxErofsBytes?: number;
  /** Time allowed to `fsck.erofs` (check or extraction), in milliseconds. */
  erofsTimeoutMs?: number;
  onWarning?: (message: string) => void;
}

export const DEFAULT_MAX_EROFS_BYTES = DEFAULT_EXTRACT_LIMITS.maxBytes;
export const DEFAULT_EROFS_TIMEOUT_MS = 600_000;

/** The EROFS superblock sits at byte 1024 and starts with this little-endian magic. */
const EROFS_SUPER_OFFSET = 1024;
const EROFS_MAGIC = 0xe0f5e1e2;

export class RootfsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RootfsFileError';
  }
}

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

async function readHead(path: string, bytes: number, position = 0): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(bytes);
    const { bytesRead } = await fh.read(head, 0, bytes, position);
    return head.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

/** Hex SHA-256 of a file's bytes, streamed. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(path),
    new Writable({
      write(chunk: Buffer, _enc, done) {
        hash.update(chunk);
        done();
      },
    }),
  );
  return hash.digest('hex');
}

/** Throws unless `path` is a regular file holding an EROFS superblock that `fsck.erofs` accepts. */
export async function checkErofsImage(path: string, opts: RootfsFileOptions = {}): Promise<void> {
  const st = await stat(path);
  if (!st.isFile()) throw new RootfsFileError(`${path} is not a regular file`);
  const max = opts.maxErofsBytes ?? DEFAULT_MAX_EROFS_BYTES;
  if (st.size > max) throw new RootfsFileError(`EROFS image ${path} is ${st.size} bytes, over the limit of ${max} (maxErofsBytes)`);
  const head = await readHead(path, 4, EROFS_SUPER_OFFSET);
  if (head.length !== 4 || head.readUInt32LE(0) !== EROFS_MAGIC) throw new RootfsFileError(`${path} is not an EROFS image (no superblock magic at byte ${EROFS_SUPER_OFFSET})`);
  await runTool('fsck.erofs', [path], opts.erofsTimeoutMs ?? DEFAULT_EROFS_TIMEOUT_MS).catch((err: unknown) => {
    throw new RootfsFileError(`EROFS image ${path} failed its check: ${err instanceof Error ? err.message : String(err)}`);
  });
}

/**
 * Unpacks the rootfs file `path` of kind `kind` into `dest` (created; its
 * parent must exist). Tarball and CPIO: confined extraction with owners kept
 * when running as root, devices skipped. EROFS: checked, then extracted in a
 * sandbox (see the file comment).
 */
export async function unpackRootfsFile(kind: RootfsFileKind, path: string, dest: string, opts: RootfsFileOptions = {}): Promise<void> {
  if (await stat(dest).catch(() => undefined)) throw new RootfsFileError(`${dest} already exists`);
  const limits = { ...DEFAULT_EXTRACT_LIMITS, ...(opts.limits ?? {}) };
  const warn = opts.onWarning ? { onWarning: opts.onWarning } : {};
  if (kind === 'tarball') {
    const head = await readHead(path, 6);
    if (head.subarray(0, 3).toString('latin1') === 'BZh' || head.equals(XZ_MAGIC)) {
      throw new RootfsFileError(`${path}: bzip2 and xz tarballs are not supported (use a plain, gzip or zstd tarball)`);
    }
    await extractTar(dest, createReadStream(path), { ...limits, ...warn, mode: 'plain', compression: 'auto', removeOnError: true });
    return;
  }
  if (kind === 'cpio') {
    await extractCpio(dest, createReadStream(path), { ...limits, ...warn, compression: 'auto', removeOnError: true });
    return;
  }
  await checkErofsImage(path, opts);
  await mkdir(dest);
  try {
    // Read-only everything, writable only `dest`; no network; dies with us.
    await runTool(
      'bwrap',
      [
        '--ro-bind', '/', '/',
        '--bind', dest, dest,
        '--dev', '/dev',
        '--proc', '/proc',
        '--unshare-ipc', '--unshare-pid', '--unshare-net', '--unshare-uts',
        '--die-with-parent', '--new-session',
        '--chdir', dirname(dest),
        'fsck.erofs', `--extract=${dest}`, path,
      ],
      opts.erofsTimeoutMs ?? DEFAULT_EROFS_TIMEOUT_MS,
    );
  } catch (err) {
    await rm(dest, { recursive: true, force: true });
    throw new RootfsFileError(`extracting EROFS image ${path} failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}
