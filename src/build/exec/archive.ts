/**
 * ADD's local archive auto-extraction (tar, optionally gzip, bzip2 or xz),
 * confined to the stage root and bounded.
 *
 * Invariants (security rows 1–3):
 * - entry names that are absolute or climb with `..` are refused, and every
 *   write goes through resolveInRoot with the final component not followed, so
 *   neither names nor links (in the archive or already in the stage) lead out;
 * - hardlink targets resolve inside the root too;
 * - decompressed bytes, entry count and path depth are capped (named limits);
 *   crossing one stops the stream and fails with a clear error.
 */
import { createReadStream } from 'node:fs';
import { open, lstat, rm, symlink, link, chmod, lchown, utimes, lutimes } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { spawn } from 'node:child_process';
import { posix } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import tarStream from 'tar-stream';
import { resolveInRoot } from './inroot.js';
import { mkdirInRoot, type Owner } from './copy.js';

export interface ArchiveLimits {
  maxBytes: number;
  maxEntries: number;
  maxDepth: number;
}

export const DEFAULT_ARCHIVE_LIMITS: ArchiveLimits = { maxBytes: 8 * 1024 ** 3, maxEntries: 1_000_000, maxDepth: 256 };

export class ArchiveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveError';
  }
}

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz';

/** Tells an archive ADD must extract from any other file, by its first bytes. */
export async function detectArchive(path: string): Promise<ArchiveKind | undefined> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(512);
    const { bytesRead } = await fh.read(buf, 0, 512, 0);
    if (bytesRead >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) return 'gzip';
    if (bytesRead >= 3 && buf.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
    if (bytesRead >= 6 && buf.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
    if (bytesRead >= 262 && buf.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    return undefined;
  } finally {
    await fh.close();
  }
}

/** The decompressed tar stream of `archive`: zlib for gzip, the `xz` / `bzip2` tools for those. */
function decompressed(archive: string, kind: ArchiveKind): { stream: Readable; stop: () => void } {
  if (kind === 'tar') return { stream: createReadStream(archive), stop: () => undefined };
  if (kind === 'gzip') return { stream: createReadStream(archive).pipe(createGunzip()), stop: () => undefined };
  const tool = kind === 'xz' ? 'xz' : 'bzip2';
  const child = spawn(tool, ['-dc', '--', archive], { stdio: ['ignore', 'pipe', 'ignore'] });
  const out = new PassThrough();
  child.on('error', (e) => out.destroy(new ArchiveError(`${tool} is needed to extract this archive: ${e.message}`)));
  child.on('close', (code) => {
    if (code !== 0 && code !== null) out.destroy(new ArchiveError(`${tool} failed to decompress the archive (exit ${code})`));
  });
  child.stdout.pipe(out);
  return { stream: out, stop: () => child.kill('SIGKILL') };
}

/** Counts decompressed bytes and fails past the cap. */
function byteCap(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      if (seen > max) cb(new ArchiveError(`archive expands past the limit of ${max} bytes (decompression bomb?)`));
      else cb(null, chunk);
    },
  });
}

export function safeEntryName(name: string): string {
  const trimmed = name.replace(/^\.\/+/, '');
  if (trimmed.startsWith('/')) throw new ArchiveError(`archive entry "${name}" is an absolute path`);
  const parts = trimmed.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new ArchiveError(`archive entry "${name}" climbs out with ".."`);
  return parts.join('/');
}

export interface ExtractOptions {
  limits?: Partial<ArchiveLimits>;
  /** Owner forced on every entry (ADD --chown); otherwise the archive's. */
  owner?: Owner;
}

/** Extracts `archive` into the directory `destDir` inside `root`. Answers the entry count. */
export async function extractArchive(archive: string, kind: ArchiveKind, root: string, destDir: string, opts: ExtractOptions = {}): Promise<number> {
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...opts.limits };
  await mkdirInRoot(root, destDir);
  const extract = tarStream.extract();
  let entries = 0;
  const dirTimes: Array<[string, Date]> = [];
  extract.on('entry', (header, body, next) => {
    const work = async (): Promise<void> => {
      if (++entries > limits.maxEntries) throw new ArchiveError(`archive has more than ${limits.maxEntries} entries`);
      const rel = safeEntryName(header.name);
      if (rel === '') {
        body.resume();
        return;
      }
      if (rel.split('/').length > limits.maxDepth) throw new ArchiveError(`archive entry nests deeper than ${limits.maxDepth} levels`);
      const inside = posix.join(destDir, rel);
      const uid = opts.owner?.uid ?? header.uid ?? 0;
      const gid = opts.owner?.gid ?? header.gid ?? 0;
      const mode = (header.mode ?? 0o644) & 0o7777;
      const mtime = header.mtime ?? new Date(0);
      if (header.type === 'directory') {
        const host = await mkdirInRoot(root, inside);
        await lchown(host, uid, gid);
        await chmod(host, mode);
        dirTimes.push([host, mtime]);
        body.resume();
        return;
      }
      await mkdirInRoot(root, posix.dirname(inside));
      const host = await resolveInRoot(root, inside, { followFinal: false });
      const existing = await lstat(host).catch(() => undefined);
      if (existing?.isDirectory()) throw new ArchiveError(`archive entry ${rel} would replace a directory`);
      if (existing) await rm(host, { force: true });
      if (header.type === 'symlink') {
        await symlink(header.linkname ?? '', host);
        await lchown(host, uid, gid);
        await lutimes(host, mtime, mtime);
        body.resume();
      } else if (header.type === 'link') {
        const target = await resolveInRoot(root, posix.join(destDir, safeEntryName(header.linkname ?? '')), { followFinal: false });
        await link(target, host);
        body.resume();
      } else if (header.type === 'file' || header.type === 'contiguous-file') {
        const fh = await open(host, 'wx', 0o600);
        try {
          await pipeline(body, fh.createWriteStream({ autoClose: false }));
        } finally {
          await fh.close();
        }
        await lchown(host, uid, gid);
        await chmod(host, mode);
        await utimes(host, mtime, mtime);
      } else {
        body.resume();
      }
    };
    work().then(
      () => next(),
      (err: unknown) => {
        body.resume();
        extract.destroy(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
  const dec = decompressed(archive, kind);
  try {
    await pipeline(dec.stream, byteCap(limits.maxBytes), extract);
  } finally {
    dec.stop();
  }
  for (const [host, t] of dirTimes.reverse()) await utimes(host, t, t).catch(() => undefined);
  return entries;
}
