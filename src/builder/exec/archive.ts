/**
 * ADD's local archive auto-extraction (tar, optionally gzip, bzip2 or xz),
 * confined to the stage root and bounded.
 *
 * Invariants (security rows 1–3), held by src/oci/extract.ts: nothing is
 * written outside the destination directory (names cleaned, `..` above it
 * refused, links resolved inside it, the final component never followed);
 * decompressed bytes, entry count and path depth are capped (named limits) and
 * crossing one fails at once with a clear error.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { spawn } from 'node:child_process';
import { PassThrough, type Readable } from 'node:stream';
import { extractTar, ExtractLimitError } from '../../oci/index.js';
import { mkdirInRoot } from './copy.js';

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

export interface ExtractOptions {
  limits?: Partial<ArchiveLimits>;
  onWarning?: (message: string) => void;
}

/**
 * Extracts `archive` into the directory `destDir` inside `root` with src/oci's
 * confined extractor (entry names cleaned, links resolved inside the target,
 * final components never followed, limits enforced). Answers the entry count.
 */
export async function extractArchive(archive: string, kind: ArchiveKind, root: string, destDir: string, opts: ExtractOptions = {}): Promise<number> {
  const limits = { ...DEFAULT_ARCHIVE_LIMITS, ...opts.limits };
  const target = await mkdirInRoot(root, destDir);
  const dec = decompressed(archive, kind);
  try {
    const result = await extractTar(target, dec.stream, {
      mode: 'plain',
      compression: 'none',
      maxBytes: limits.maxBytes,
      maxEntries: limits.maxEntries,
      maxPathDepth: limits.maxDepth,
      preserveOwners: true,
      ...(opts.onWarning ? { onWarning: opts.onWarning } : {}),
    });
    return result.entries;
  } catch (err) {
    if (err instanceof ExtractLimitError && err.limit === 'maxBytes') {
      throw new ArchiveError(`archive expands past the limit of ${limits.maxBytes} bytes (decompression bomb?)`);
    }
    throw err;
  } finally {
    dec.stop();
  }
}
