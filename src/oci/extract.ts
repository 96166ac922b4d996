/**
 * Confined, streaming extraction of tar layers (plain, gzip or zstd) into a root
 * directory, with OCI whiteouts in `layer` mode. Other archive formats reuse the
 * same confined writer through `extractArchive` (cpio-read.ts).
 *
 * Invariants (security-cases.md rows 1–3):
 * - Nothing is created, changed or removed outside `root`. Entry names are cleaned
 *   lexically (a leading `/` is dropped, as Docker does; a `..` that climbs above
 *   the root is refused). Every parent directory is resolved component by component
 *   with lstat inside the root; a symlink met on the way is followed as if the root
 *   were `/` (chroot-style, `resolveInRoot`), so `x -> /etc` then `x/passwd` writes
 *   `<root>/etc/passwd`. The final component is never followed: an existing
 *   symlink there is replaced, files are opened O_EXCL|O_NOFOLLOW, owners, modes
 *   and times are set through the open descriptor or with l* calls.
 * - Hardlinks only point at entries that resolve inside the root.
 * - Input is streamed: memory holds one chunk, PAX metadata up to `maxMetaBytes`,
 *   and per-entry bookkeeping bounded by `maxEntries`. Decompressed bytes, entries,
 *   path depth and path length are capped; exceeding one fails at once with
 *   `ExtractLimitError`.
 * - Whiteout entries (`.wh.*`) are applied in `layer` mode and never written.
 *
 * node:zlib, fzstd and node:child_process are imported where they are used: oci's
 * index is loaded by every `unikraft` command that talks to the platform (through
 * src/client), and those never extract (issue 14 item 8, bench/cli/).
 */
import { lstat, mkdir, open, readdir, readlink, realpath, rm, symlink, link, lchown, lutimes, chmod, utimes, constants } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { layerCompression } from './mediatypes.js';
import { ZstdFrameGuard, ZstdWindowError } from './zstd-frames.js';
import { TarMetaLimitError, readTar, type TarHeader } from './tar.js';

async function execFileAsync(file: string, args: string[]): Promise<void> {
  const { execFile } = await import('node:child_process');
  await promisify(execFile)(file, args);
}

export type Compression = 'none' | 'gzip' | 'zstd';

export interface ExtractLimits {
  /** Largest decompressed tar stream, in bytes. */
  maxBytes: number;
  /** Most tar entries (whiteouts included). */
  maxEntries: number;
  /** Most path components in an entry name. */
  maxPathDepth: number;
  /** Longest entry name or link target, in bytes. */
  maxPathLength: number;
  /** Largest PAX / GNU long-name header body, in bytes (held in memory). */
  maxMetaBytes: number;
}

export const DEFAULT_EXTRACT_LIMITS: Readonly<ExtractLimits> = Object.freeze({
  maxBytes: 16 * 1024 ** 3,
  maxEntries: 1_000_000,
  maxPathDepth: 128,
  maxPathLength: 4096,
  maxMetaBytes: 1024 * 1024,
});

export interface ExtractOptions extends Partial<ExtractLimits> {
  /** `layer` applies OCI whiteouts; `plain` extracts a tar as it is (`.wh.` names are plain files). */
  mode?: 'plain' | 'layer';
  /** `auto` (default) detects gzip / zstd by magic bytes; a known layer `mediaType` decides otherwise. */
  compression?: Compression | 'auto';
  mediaType?: string;
  /** Set numeric owners from the archive; default: only when running as root. */
  preserveOwners?: boolean;
  /** Create character and block devices (only possible as root); default false: skipped. */
  allowDevices?: boolean;
  /** On failure, remove `root` entirely (for extraction into a fresh directory). */
  removeOnError?: boolean;
  onWarning?: (message: string) => void;
}

export interface ExtractResult {
  entries: number;
  /** Decompressed tar bytes read. */
  bytes: number;
  skipped: number;
}

export class ExtractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ExtractError';
  }
}

/** An entry whose name or link target would reach outside the root. */
export class ExtractPathError extends ExtractError {
  constructor(
    readonly entry: string,
    message: string,
  ) {
    super(message);
    this.name = 'ExtractPathError';
  }
}

export type ExtractLimitName = 'maxBytes' | 'maxEntries' | 'maxPathDepth' | 'maxPathLength' | 'maxMetaBytes' | 'maxZstdWindowBytes';

export class ExtractLimitError extends ExtractError {
  constructor(
    readonly limit: ExtractLimitName,
    readonly value: number,
    message: string,
  ) {
    super(message);
    this.name = 'ExtractLimitError';
  }
}

const MAX_SYMLINK_HOPS = 40;

/**
 * Lexically cleans an archive entry name into path components: leading `/`
 * dropped, `.` and empty components removed, `..` applied. Throws
 * `ExtractPathError` when `..` climbs above the root.
 */
export function cleanEntryPath(name: string): string[] {
  const out: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new ExtractPathError(name, `archive entry "${name}" escapes the extraction root`);
      out.pop();
      continue;
    }
    out.push(part);
  }
  return out;
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === code;
}

export interface ResolveOptions {
  /** Follow a symlink in the last component too (default true, like open(2)). */
  followFinal?: boolean;
}

/**
 * Resolves `path` inside `root` as if `root` were `/`: each component is checked
 * with lstat; a symlink is followed with its target taken relative to the root
 * (absolute) or its directory (relative), and `..` never climbs above the root.
 * Missing components are kept as they are. `root` should be a real path
 * (no symlinks). Returns an absolute host path inside `root`.
 */
export async function resolveInRoot(root: string, path: string, options: ResolveOptions = {}): Promise<string> {
  const followFinal = options.followFinal ?? true;
  const pending = path.split('/').filter((p) => p !== '' && p !== '.');
  const resolved: string[] = [];
  let hops = 0;
  while (pending.length > 0) {
    const part = pending.shift() as string;
    if (part === '.') continue;
    if (part === '..') {
      resolved.pop();
      continue;
    }
    const isLast = pending.length === 0;
    if (isLast && !followFinal) {
      resolved.push(part);
      continue;
    }
    const host = join(root, ...resolved, part);
    let isLink = false;
    try {
      isLink = (await lstat(host)).isSymbolicLink();
    } catch (err) {
      // A missing component is kept; later `..` may lead back to existing ones, so keep checking.
      if (!isErrno(err, 'ENOENT') && !isErrno(err, 'ENOTDIR')) throw err;
    }
    if (!isLink) {
      resolved.push(part);
      continue;
    }
    if (++hops > MAX_SYMLINK_HOPS) throw new ExtractError(`too many levels of symbolic links resolving "${path}"`);
    const target = await readlink(host);
    if (target.startsWith('/')) resolved.length = 0;
    pending.unshift(...target.split('/').filter((p) => p !== '' && p !== '.'));
  }
  return join(root, ...resolved);
}

// ---------------------------------------------------------------------------
// Decompression

const GZIP_MAGIC = [0x1f, 0x8b];
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];

/** Compression judged by the first bytes of a stream. */
export function detectCompression(head: Uint8Array): Compression {
  if (head.length >= 2 && head[0] === GZIP_MAGIC[0] && head[1] === GZIP_MAGIC[1]) return 'gzip';
  if (head.length >= 4 && ZSTD_MAGIC.every((b, i) => head[i] === b)) return 'zstd';
  return 'none';
}

// zstd input is fed in small slices so one push cannot inflate into a large burst
// (a 3-byte RLE block header expands to 128 KiB).
const ZSTD_SLICE = 512;

async function* zstdDecode(input: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  let out: Buffer[] = [];
  const { Decompress } = await import('fzstd');
  const dec = new Decompress((data) => {
    if (data.length > 0) out.push(Buffer.from(data));
  });
  // fzstd allocates a frame's whole window from its header: the guard refuses a
  // too-large window before the decoder sees the frame (zstd-frames.ts).
  const guard = new ZstdFrameGuard();
  for await (const chunk of input) {
    for (let i = 0; i < chunk.length; i += ZSTD_SLICE) {
      const slice = chunk.subarray(i, i + ZSTD_SLICE);
      try {
        guard.check(slice);
      } catch (err) {
        if (err instanceof ZstdWindowError) throw new ExtractLimitError('maxZstdWindowBytes', err.max, err.message);
        throw err;
      }
      dec.push(slice);
      if (out.length > 0) {
        const ready = out;
        out = [];
        yield* ready;
      }
    }
  }
  dec.push(new Uint8Array(0), true);
  yield* out;
}

/**
 * One reader over a decompression source. It remembers a read in flight so that
 * teardown never waits on it: a stalled peer (a socket, a FIFO, a producer that
 * stopped) would otherwise hold an aborted extraction open forever, and with it
 * the source's file descriptor.
 */
class SourceReader {
  private pending: Promise<IteratorResult<Buffer | string>> | undefined;
  private readonly it: AsyncIterator<Buffer | string>;

  constructor(private readonly source: AsyncIterable<Buffer | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  async next(): Promise<IteratorResult<Buffer>> {
    const p = this.it.next();
    this.pending = p;
    const settled = (): void => {
      if (this.pending === p) this.pending = undefined;
    };
    p.then(settled, settled);
    const r = await p;
    if (r.done) return { done: true, value: undefined };
    return { done: false, value: typeof r.value === 'string' ? Buffer.from(r.value) : r.value };
  }

  /**
   * Ends the source. On an early stop a stream source is destroyed first (which
   * also closes a descriptor it owns), so a read in flight settles; the iterator's
   * `return` is then awaited only when no read is in flight (an async generator
   * would queue it behind that read).
   */
  async close(early: boolean): Promise<void> {
    const stream = this.source as { destroy?: () => void; destroyed?: boolean };
    if (early && typeof stream.destroy === 'function' && stream.destroyed !== true) stream.destroy();
    const ret = this.it.return?.();
    if (ret === undefined) return;
    if (this.pending !== undefined) {
      ret.then(undefined, () => undefined);
      return;
    }
    try {
      await ret;
    } catch {
      // The source failing while being closed changes nothing for an extraction already ending.
    }
  }
}

async function* headThen(head: Buffer[], reader: SourceReader): AsyncGenerator<Buffer> {
  yield* head;
  while (true) {
    const r = await reader.next();
    if (r.done) return;
    yield r.value;
  }
}

/**
 * gzip through zlib's stream, fed by a concurrent loop. Teardown (consumer stop or
 * error) destroys the inflater and releases the feeder at once, without waiting for
 * the source's next chunk.
 */
async function* gunzip(input: AsyncIterator<Buffer>): AsyncGenerator<Buffer> {
  const { createGunzip } = await import('node:zlib');
  const z = createGunzip();
  let stop: () => void = () => undefined;
  const stopped = new Promise<'stopped'>((resolve) => {
    stop = () => resolve('stopped');
  });
  const writable = (): Promise<unknown> =>
    Promise.race([
      stopped,
      new Promise<void>((resolve) => {
        const done = (): void => {
          z.off('drain', done);
          z.off('close', done);
          resolve();
        };
        z.on('drain', done);
        z.on('close', done);
      }),
    ]);
  const feed = (async () => {
    try {
      while (!z.destroyed) {
        const next = input.next();
        next.then(undefined, () => undefined); // may lose the race below and settle later
        const r = await Promise.race([next, stopped]);
        if (r === 'stopped' || z.destroyed) return;
        if (r.done) {
          z.end();
          return;
        }
        if (!z.write(r.value)) await writable();
      }
    } catch (err) {
      z.destroy(err as Error);
    }
  })();
  try {
    for await (const chunk of z as AsyncIterable<Buffer>) yield chunk;
  } finally {
    z.destroy();
    stop();
    await feed;
  }
}

/** Decompresses `source` (detecting the format unless told), chunk by chunk. */
export async function* decompressStream(
  source: AsyncIterable<Buffer | string>,
  compression: Compression | 'auto' = 'auto',
): AsyncGenerator<Buffer> {
  const reader = new SourceReader(source);
  const head: Buffer[] = [];
  let headLen = 0;
  let finished = false;
  try {
    while (compression === 'auto' && headLen < 4) {
      const r = await reader.next();
      if (r.done) break;
      head.push(r.value);
      headLen += r.value.length;
    }
    const kind = compression === 'auto' ? detectCompression(Buffer.concat(head).subarray(0, 4)) : compression;
    const raw = headThen(head, reader);
    if (kind === 'gzip') yield* gunzip(raw);
    else if (kind === 'zstd') yield* zstdDecode(raw);
    else yield* raw;
    finished = true;
  } finally {
    await reader.close(!finished);
  }
}

async function* capBytes(input: AsyncIterable<Buffer>, max: number, counter: { bytes: number }): AsyncGenerator<Buffer> {
  for await (const chunk of input) {
    counter.bytes += chunk.length;
    if (counter.bytes > max) {
      throw new ExtractLimitError('maxBytes', max, `layer decompresses to more than ${max} bytes (maxBytes)`);
    }
    yield chunk;
  }
}

// ---------------------------------------------------------------------------
// Extraction

interface DeferredDir {
  rel: string;
  mode: number;
  mtime: number;
}

class Extractor {
  readonly limits: ExtractLimits;
  readonly layerMode: boolean;
  readonly owners: boolean;
  private readonly written = new Set<string>();
  private readonly dirs: DeferredDir[] = [];
  result: ExtractResult = { entries: 0, bytes: 0, skipped: 0 };

  constructor(
    readonly root: string,
    readonly options: ExtractOptions,
  ) {
    this.limits = { ...DEFAULT_EXTRACT_LIMITS };
    for (const k of Object.keys(DEFAULT_EXTRACT_LIMITS) as Array<keyof ExtractLimits>) {
      const v = options[k];
      if (v !== undefined) this.limits[k] = v;
    }
    this.layerMode = (options.mode ?? 'plain') === 'layer';
    this.owners = options.preserveOwners ?? process.getuid?.() === 0;
  }

  private warn(message: string): void {
    this.result.skipped++;
    this.options.onWarning?.(message);
  }

  private checkName(name: string, what: string): string[] {
    if (Buffer.byteLength(name) > this.limits.maxPathLength) {
      throw new ExtractLimitError(
        'maxPathLength',
        this.limits.maxPathLength,
        `${what} of ${Buffer.byteLength(name)} bytes is longer than ${this.limits.maxPathLength} (maxPathLength)`,
      );
    }
    const parts = cleanEntryPath(name);
    if (parts.length > this.limits.maxPathDepth) {
      throw new ExtractLimitError(
        'maxPathDepth',
        this.limits.maxPathDepth,
        `${what} has ${parts.length} path components, more than ${this.limits.maxPathDepth} (maxPathDepth)`,
      );
    }
    return parts;
  }

  /** Resolves the parent of `parts` inside the root and makes sure it exists as a directory. */
  private async parentDir(parts: string[], create: boolean): Promise<string> {
    const parent = await resolveInRoot(this.root, parts.slice(0, -1).join('/'));
    if (create) {
      // Every existing component of `parent` was checked to be no symlink; only missing ones are created.
      try {
        await mkdir(parent, { recursive: true, mode: 0o755 });
      } catch (err) {
        if (isErrno(err, 'ENOTDIR') || isErrno(err, 'EEXIST')) {
          throw new ExtractError(`cannot extract "${parts.join('/')}": a parent is not a directory`);
        }
        throw err;
      }
      const st = await lstat(parent);
      if (!st.isDirectory()) throw new ExtractError(`cannot extract "${parts.join('/')}": a parent is not a directory`);
    }
    return parent;
  }

  /** Removes whatever is at `host` (no link is followed); keeps an existing directory if `keepDir`. */
  private async clear(host: string, keepDir: boolean): Promise<'dir' | 'none'> {
    let st;
    try {
      st = await lstat(host);
    } catch (err) {
      if (isErrno(err, 'ENOENT')) return 'none';
      throw err;
    }
    if (keepDir && st.isDirectory()) return 'dir';
    await rm(host, { recursive: true, force: true });
    return 'none';
  }

  private async setOwner(host: string, h: TarHeader): Promise<void> {
    if (this.owners) await lchown(host, h.uid, h.gid);
  }

  async entry(h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    this.result.entries++;
    if (this.result.entries > this.limits.maxEntries) {
      throw new ExtractLimitError('maxEntries', this.limits.maxEntries, `layer has more than ${this.limits.maxEntries} entries (maxEntries)`);
    }
    const parts = this.checkName(h.name, `entry name "${h.name.slice(0, 80)}"`);
    if (parts.length === 0) return; // the root itself: its metadata belongs to whoever made the root
    const base = parts[parts.length - 1];

    if (this.layerMode && base.startsWith('.wh.')) {
      await this.whiteout(parts);
      return;
    }

    const parent = await this.parentDir(parts, true);
    const host = join(parent, base);
    switch (h.type) {
      case 'directory': {
        if ((await this.clear(host, true)) === 'none') await mkdir(host, { mode: 0o700 });
        await this.setOwner(host, h);
        this.dirs.push({ rel: relative(this.root, host), mode: h.mode, mtime: h.mtime });
        break;
      }
      case 'file':
        await this.clear(host, false);
        await this.writeFile(host, h, body);
        break;
      case 'symlink':
        // A symlink target may climb above the root: it is only ever followed clamped (resolveInRoot).
        if (Buffer.byteLength(h.linkname) > this.limits.maxPathLength) {
          throw new ExtractLimitError('maxPathLength', this.limits.maxPathLength, `symlink target of "${h.name}" is longer than ${this.limits.maxPathLength} bytes (maxPathLength)`);
        }
        await this.clear(host, false);
        await symlink(h.linkname, host);
        await this.setOwner(host, h);
        await lutimes(host, h.mtime, h.mtime);
        break;
      case 'hardlink': {
        const targetParts = this.checkName(h.linkname, `hardlink target "${h.linkname.slice(0, 80)}"`);
        if (targetParts.length === 0) throw new ExtractPathError(h.name, `hardlink "${h.name}" points at the root`);
        const targetParent = await resolveInRoot(this.root, targetParts.slice(0, -1).join('/'));
        const target = join(targetParent, targetParts[targetParts.length - 1]);
        let st;
        try {
          st = await lstat(target);
        } catch (err) {
          if (isErrno(err, 'ENOENT')) throw new ExtractError(`hardlink "${h.name}" points at missing "${h.linkname}"`);
          throw err;
        }
        if (st.isDirectory()) throw new ExtractError(`hardlink "${h.name}" points at a directory`);
        if (target === host) break;
        await this.clear(host, false);
        await link(target, host);
        break;
      }
      case 'char':
      case 'block':
      case 'fifo':
        await this.special(host, h);
        break;
      default:
        this.warn(`skipping "${h.name}": unsupported tar entry type ${JSON.stringify(h.typeflag)}`);
        return;
    }
    if (this.layerMode) this.written.add(host);
  }

  private async writeFile(host: string, h: TarHeader, body: AsyncIterable<Buffer>): Promise<void> {
    const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
    const fh = await open(host, flags, 0o600);
    try {
      for await (const chunk of body) {
        let off = 0;
        while (off < chunk.length) off += (await fh.write(chunk, off, chunk.length - off)).bytesWritten;
      }
      if (this.owners) await fh.chown(h.uid, h.gid);
      await fh.chmod(h.mode); // after chown, which clears setuid/setgid
      await fh.utimes(h.mtime, h.mtime);
    } finally {
      await fh.close();
    }
  }

  private async special(host: string, h: TarHeader): Promise<void> {
    if (h.type !== 'fifo' && !(this.options.allowDevices && process.getuid?.() === 0)) {
      this.warn(`skipping device node "${h.name}" (devices need root and allowDevices)`);
      return;
    }
    await this.clear(host, false);
    const mode = (h.mode & 0o7777).toString(8);
    try {
      if (h.type === 'fifo') await execFileAsync('mkfifo', ['-m', mode, '--', host]);
      else await execFileAsync('mknod', ['-m', mode, '--', host, h.type === 'char' ? 'c' : 'b', String(h.devMajor), String(h.devMinor)]);
    } catch (err) {
      this.warn(`could not create ${h.type} "${h.name}": ${(err as Error).message}`);
      return;
    }
    await this.setOwner(host, h);
    await lutimes(host, h.mtime, h.mtime);
  }

  private async whiteout(parts: string[]): Promise<void> {
    const base = parts[parts.length - 1];
    const parent = await this.parentDir(parts, false);
    if (base === '.wh..wh..opq') {
      let names: string[];
      try {
        if (!(await lstat(parent)).isDirectory()) return;
        names = await readdir(parent);
      } catch (err) {
        if (isErrno(err, 'ENOENT')) return;
        throw err;
      }
      for (const name of names) {
        const child = join(parent, name);
        if (!this.written.has(child)) await rm(child, { recursive: true, force: true });
      }
      return;
    }
    if (base.startsWith('.wh..wh.')) return; // aufs bookkeeping (e.g. .wh..wh.plnk), not a whiteout
    const victim = join(parent, base.slice('.wh.'.length));
    if (this.written.has(victim)) return; // whiteouts hide lower layers only
    await rm(victim, { recursive: true, force: true });
  }

  /** Directory modes and mtimes, last, children first; skipped if the path no longer is a plain directory. */
  async finish(): Promise<void> {
    for (let i = this.dirs.length - 1; i >= 0; i--) {
      const d = this.dirs[i];
      if (!(await this.isPlainDir(d.rel))) continue;
      const host = join(this.root, d.rel);
      await chmod(host, d.mode);
      await utimes(host, d.mtime, d.mtime);
    }
  }

  private async isPlainDir(rel: string): Promise<boolean> {
    let host = this.root;
    for (const part of rel.split(sep)) {
      host = join(host, part);
      try {
        const st = await lstat(host);
        if (!st.isDirectory()) return false;
      } catch {
        return false;
      }
    }
    return true;
  }
}

function compressionFor(options: ExtractOptions): Compression | 'auto' {
  if (options.compression !== undefined) return options.compression;
  if (options.mediaType !== undefined) {
    const c = layerCompression(options.mediaType);
    if (c === undefined) throw new ExtractError(`unsupported layer media type "${options.mediaType}"`);
    return c;
  }
  return 'auto';
}

/** One entry in the tar-shaped form the confined writer takes (tar's own, or another format mapped onto it). */
export interface ArchiveEntry {
  header: TarHeader;
  /** The entry's data; read before the next entry is asked for. */
  body: AsyncIterable<Buffer>;
}

/** Turns decompressed archive bytes into entries, honouring the limits it can check while parsing. */
export type ArchiveParser = (bytes: AsyncIterable<Buffer>, limits: Readonly<ExtractLimits>) => AsyncIterable<ArchiveEntry>;

/**
 * Extracts any archive whose entries `parse` yields into `root` (created if
 * missing), with the guarantees of the file comment: decompression, the byte
 * cap, confinement, limits, teardown. `extractTar` and src/oci/cpio-read.ts use it.
 */
export async function extractArchive(
  root: string,
  source: Readable | AsyncIterable<Buffer>,
  options: ExtractOptions,
  parse: ArchiveParser,
): Promise<ExtractResult> {
  await mkdir(root, { recursive: true });
  const realRoot = await realpath(root);
  const ex = new Extractor(realRoot, options);
  const counter = { bytes: 0 };
  try {
    const bytes = capBytes(decompressStream(source as AsyncIterable<Buffer>, compressionFor(options)), ex.limits.maxBytes, counter);
    for await (const { header, body } of parse(bytes, ex.limits)) await ex.entry(header, body);
    await ex.finish();
  } catch (err) {
    if (typeof (source as Readable).destroy === 'function') (source as Readable).destroy();
    if (options.removeOnError) await rm(realRoot, { recursive: true, force: true });
    throw err;
  }
  return { ...ex.result, bytes: counter.bytes };
}

async function* tarEntries(bytes: AsyncIterable<Buffer>, limits: Readonly<ExtractLimits>): AsyncGenerator<ArchiveEntry> {
  try {
    yield* readTar(bytes, { maxMetaBytes: limits.maxMetaBytes });
  } catch (err) {
    if (err instanceof TarMetaLimitError) throw new ExtractLimitError('maxMetaBytes', limits.maxMetaBytes, err.message);
    throw err;
  }
}

/**
 * Extracts a tar stream (compressed or not) into `root`, which is created if
 * missing. See the file comment for the guarantees; errors are `ExtractError`
 * (`ExtractPathError`, `ExtractLimitError`) or `TarFormatError`.
 */
export function extractTar(root: string, source: Readable | AsyncIterable<Buffer>, options: ExtractOptions = {}): Promise<ExtractResult> {
  return extractArchive(root, source, options, tarEntries);
}

/** Extracts one image layer (whiteouts applied). */
export function extractLayer(root: string, source: Readable | AsyncIterable<Buffer>, options: ExtractOptions = {}): Promise<ExtractResult> {
  return extractTar(root, source, { ...options, mode: 'layer' });
}

export interface LayerSource {
  /** Opens the layer's bytes (as stored: compressed or not). */
  open: () => Readable | AsyncIterable<Buffer> | Promise<Readable | AsyncIterable<Buffer>>;
  mediaType?: string;
}

/** Applies layers in order onto `root` (lowest first); limits apply per layer. */
export async function applyLayers(root: string, layers: readonly LayerSource[], options: ExtractOptions = {}): Promise<ExtractResult[]> {
  const results: ExtractResult[] = [];
  for (const layer of layers) {
    const source = await layer.open();
    const opts: ExtractOptions = { ...options, mode: 'layer' };
    if (layer.mediaType !== undefined && options.compression === undefined) opts.mediaType = layer.mediaType;
    results.push(await extractTar(root, source, opts));
  }
  return results;
}
