/**
 * A deterministic tar writer (ustar + PAX) and a strict streaming tar reader.
 *
 * Invariant (writer): the bytes depend only on the entries given, in the order
 * given, and the options: numeric uid/gid, empty uname/gname, mtime clamped to
 * `sourceDateEpoch`, mode kept to its 07777 bits, no atime/ctime, PAX records
 * (sorted keys, fixed header name) only where ustar cannot hold a value.
 * Same input, same bytes.
 *
 * Invariant (reader): memory stays bounded by `maxMetaBytes` (PAX / GNU long-name
 * bodies) plus one chunk; file bodies are streamed to the consumer and skipped
 * when it does not read them.
 */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { walkTreeStream, type TreeFilter, type TreeEntry } from './tree.js';

const BLOCK = 512;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

export type TarEntryType = 'file' | 'directory' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface TarEntryCommon {
  /** Path inside the archive, relative, `/`-separated (a leading `./` is kept if given). */
  name: string;
  mode?: number;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; clamped to the writer's `sourceDateEpoch`. */
  mtime?: number;
}

/** Where a file's bytes come from: a host path, a stream factory, or a small buffer. */
export type TarFileSource = string | Uint8Array | (() => Readable);

export type TarEntry =
  | (TarEntryCommon & { type: 'file'; size: number; source: TarFileSource })
  | (TarEntryCommon & { type: 'directory' })
  | (TarEntryCommon & { type: 'symlink'; target: string })
  | (TarEntryCommon & { type: 'hardlink'; target: string })
  | (TarEntryCommon & { type: 'char' | 'block'; devMajor: number; devMinor: number })
  | (TarEntryCommon & { type: 'fifo' });

export interface TarWriterOptions {
  /** Upper bound for entry mtimes (SOURCE_DATE_EPOCH); entries without mtime get it (or 0). */
  sourceDateEpoch?: number;
}

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarFormatError';
  }
}

/** A PAX or GNU long-name header larger than the reader's `maxMetaBytes`. */
export class TarMetaLimitError extends TarFormatError {
  constructor(
    readonly limit: number,
    message: string,
  ) {
    super(message);
    this.name = 'TarMetaLimitError';
  }
}

const TYPEFLAG: Record<TarEntryType, string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  char: '3',
  block: '4',
  directory: '5',
  fifo: '6',
};

const MAX_OCTAL_8 = 0o7777777;
const MAX_OCTAL_12 = 0o77777777777;

function octal(value: number, width: number): string {
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function paxRecord(key: string, value: string): Buffer {
  const body = ` ${key}=${value}\n`;
  const bodyLen = Buffer.byteLength(body);
  let len = bodyLen + String(bodyLen).length;
  if (String(len).length + bodyLen !== len) len = bodyLen + String(len).length;
  return Buffer.from(`${len}${body}`);
}

function padding(size: number): Buffer {
  const rest = size % BLOCK;
  return rest === 0 ? Buffer.alloc(0) : Buffer.alloc(BLOCK - rest);
}

interface HeaderFields {
  name: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: string;
  devMajor: number;
  devMinor: number;
}

function encodeHeader(f: HeaderFields): Buffer {
  const h = Buffer.alloc(BLOCK);
  h.write(f.name, 0, 100, 'utf8');
  h.write(octal(f.mode, 8), 100, 8, 'ascii');
  h.write(octal(f.uid, 8), 108, 8, 'ascii');
  h.write(octal(f.gid, 8), 116, 8, 'ascii');
  h.write(octal(f.size, 12), 124, 12, 'ascii');
  h.write(octal(f.mtime, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(f.typeflag, 156, 1, 'ascii');
  h.write(f.linkname, 157, 100, 'utf8');
  h.write('ustar\x0000', 257, 8, 'ascii');
  h.write(octal(f.devMajor, 8), 329, 8, 'ascii');
  h.write(octal(f.devMinor, 8), 337, 8, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

function checkEntry(e: TarEntry): void {
  if (typeof e.name !== 'string' || e.name.length === 0 || e.name.includes('\0')) {
    throw new TarFormatError(`tar entry name ${JSON.stringify(e.name)} is empty or holds NUL`);
  }
  for (const [k, v] of [['mode', e.mode], ['uid', e.uid], ['gid', e.gid], ['mtime', e.mtime]] as const) {
    if (v !== undefined && (!Number.isSafeInteger(v) || v < 0)) throw new TarFormatError(`tar entry ${e.name}: bad ${k} ${v}`);
  }
  if (e.type === 'file' && (!Number.isSafeInteger(e.size) || e.size < 0)) {
    throw new TarFormatError(`tar entry ${e.name}: bad size ${e.size}`);
  }
  if ((e.type === 'symlink' || e.type === 'hardlink') && (e.target.length === 0 || e.target.includes('\0'))) {
    throw new TarFormatError(`tar entry ${e.name}: bad link target`);
  }
}

/** Encodes the header block(s) of one entry: an optional PAX header, then the ustar header. */
export function encodeTarHeader(e: TarEntry, options: TarWriterOptions = {}): Buffer {
  checkEntry(e);
  const epoch = options.sourceDateEpoch;
  let mtime = e.mtime ?? epoch ?? 0;
  if (epoch !== undefined && mtime > epoch) mtime = epoch;
  let name = e.name;
  if (e.type === 'directory' && !name.endsWith('/')) name += '/';
  const linkname = e.type === 'symlink' || e.type === 'hardlink' ? e.target : '';
  const size = e.type === 'file' ? e.size : 0;
  const uid = e.uid ?? 0;
  const gid = e.gid ?? 0;
  const defaultMode = e.type === 'directory' ? 0o755 : e.type === 'symlink' ? 0o777 : 0o644;
  const mode = (e.mode ?? defaultMode) & 0o7777;

  const pax: Array<[string, string]> = [];
  if (Buffer.byteLength(name) > 100) pax.push(['path', name]);
  if (Buffer.byteLength(linkname) > 100) pax.push(['linkpath', linkname]);
  if (size > MAX_OCTAL_12) pax.push(['size', String(size)]);
  if (uid > MAX_OCTAL_8) pax.push(['uid', String(uid)]);
  if (gid > MAX_OCTAL_8) pax.push(['gid', String(gid)]);
  if (mtime > MAX_OCTAL_12) pax.push(['mtime', String(mtime)]);
  pax.sort((a, b) => (a[0] < b[0] ? -1 : 1));

  const fields: HeaderFields = {
    name: truncateUtf8(name, 100),
    mode,
    uid: Math.min(uid, MAX_OCTAL_8),
    gid: Math.min(gid, MAX_OCTAL_8),
    size: Math.min(size, MAX_OCTAL_12),
    mtime: Math.min(mtime, MAX_OCTAL_12),
    typeflag: TYPEFLAG[e.type],
    linkname: truncateUtf8(linkname, 100),
    devMajor: e.type === 'char' || e.type === 'block' ? e.devMajor : 0,
    devMinor: e.type === 'char' || e.type === 'block' ? e.devMinor : 0,
  };
  const main = encodeHeader(fields);
  if (pax.length === 0) return main;
  const body = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
  const paxHeader = encodeHeader({
    name: truncateUtf8(`PaxHeader/${name.replace(/\/$/, '')}`, 100),
    mode: 0o644,
    uid: 0,
    gid: 0,
    size: body.length,
    mtime: fields.mtime,
    typeflag: 'x',
    linkname: '',
    devMajor: 0,
    devMinor: 0,
  });
  return Buffer.concat([paxHeader, body, padding(body.length), main]);
}

function truncateUtf8(s: string, bytes: number): string {
  const b = Buffer.from(s);
  if (b.length <= bytes) return s;
  return b.subarray(0, bytes).toString('utf8').replace(/\uFFFD+$/, '');
}

async function* fileBody(name: string, size: number, source: TarFileSource): AsyncGenerator<Buffer> {
  let seen = 0;
  if (source instanceof Uint8Array) {
    if (source.length !== size) throw new TarFormatError(`tar entry ${name}: declared size ${size}, got ${source.length} bytes`);
    seen = source.length;
    yield Buffer.from(source.buffer, source.byteOffset, source.length);
  } else {
    const stream = typeof source === 'string' ? createReadStream(source) : source();
    for await (const chunk of stream as AsyncIterable<Buffer | string>) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      seen += buf.length;
      if (seen > size) {
        stream.destroy();
        throw new TarFormatError(`tar entry ${name}: source is larger than the declared ${size} bytes`);
      }
      yield buf;
    }
  }
  if (seen !== size) throw new TarFormatError(`tar entry ${name}: source ended at ${seen} of ${size} bytes`);
  const pad = padding(size);
  if (pad.length > 0) yield pad;
}

/** The archive's bytes, chunk by chunk, entries in the order given; ends with two zero blocks. */
export async function* tarChunks(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
  options: TarWriterOptions = {},
): AsyncGenerator<Buffer> {
  for await (const e of entries) {
    yield encodeTarHeader(e, options);
    if (e.type === 'file') yield* fileBody(e.name, e.size, e.source);
  }
  yield ZERO_BLOCK;
  yield ZERO_BLOCK;
}

/** A readable byte stream of the archive (see `tarChunks`); it respects backpressure. */
export function createTarStream(
  entries: Iterable<TarEntry> | AsyncIterable<TarEntry>,
  options: TarWriterOptions = {},
): Readable {
  return Readable.from(tarChunks(entries, options), { objectMode: false });
}

export interface TarDirectoryOptions extends TarWriterOptions {
  /** Leaves out a path (and a directory's contents) when it answers false. */
  filter?: TreeFilter;
  /** Prefix for every name (e.g. `rootfs/`); must end with `/` when given. */
  prefix?: string;
  /** Write an entry for the root directory itself (as `./` or the prefix). Default false. */
  includeRoot?: boolean;
  /** Force every entry's owner (e.g. `{ uid: 0, gid: 0 }`); default keeps the numeric owners. */
  owner?: { uid: number; gid: number };
  /** Told about entries tar cannot hold (sockets), which are skipped. */
  onWarning?: (message: string) => void;
  maxEntries?: number;
}

function toTarEntry(e: TreeEntry, name: string, options: TarDirectoryOptions): TarEntry | undefined {
  const common: TarEntryCommon = {
    name,
    mode: e.mode,
    uid: options.owner?.uid ?? e.uid,
    gid: options.owner?.gid ?? e.gid,
    mtime: e.mtime,
  };
  if (e.hardlinkOf !== undefined) return { ...common, type: 'hardlink', target: (options.prefix ?? '') + e.hardlinkOf };
  switch (e.kind) {
    case 'file': {
      const hostPath = e.hostPath;
      return { ...common, type: 'file', size: e.size, source: hostPath };
    }
    case 'directory':
      return { ...common, type: 'directory' };
    case 'symlink':
      return { ...common, type: 'symlink', target: e.linkTarget as string };
    case 'char':
    case 'block':
      return { ...common, type: e.kind, devMajor: e.rdevMajor, devMinor: e.rdevMinor };
    case 'fifo':
      return { ...common, type: 'fifo' };
    case 'socket':
      options.onWarning?.(`skipping socket ${e.path}: tar cannot hold sockets`);
      return undefined;
  }
}

/**
 * Tars the tree under `root` in canonical order (bytewise, parents first; see
 * tree.ts), hardlinks detected by (dev, ino) and written as links to the first path.
 */
export function tarDirectory(root: string, options: TarDirectoryOptions = {}): Readable {
  async function* entries(): AsyncGenerator<TarEntry> {
    // Streamed: memory bounded by the largest directory, not the tree (see walkTreeStream).
    for await (const e of walkTreeStream(root, { filter: options.filter, maxEntries: options.maxEntries })) {
      let name: string;
      if (e.path === '.') {
        if (!options.includeRoot) continue;
        name = options.prefix ?? './';
      } else {
        name = (options.prefix ?? '') + e.path;
      }
      const entry = toTarEntry(e, name, options);
      if (entry) yield entry;
    }
  }
  return createTarStream(entries(), options);
}

// ---------------------------------------------------------------------------
// Reading

export type TarReadType = TarEntryType | 'other';

export interface TarHeader {
  /** The entry path as stored (PAX `path` / GNU long name applied), trailing `/` removed. */
  name: string;
  type: TarReadType;
  typeflag: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string;
  devMajor: number;
  devMinor: number;
}

export interface TarReadEntry {
  header: TarHeader;
  /** The entry's data; read it before asking for the next entry (it is skipped otherwise). */
  body: AsyncIterable<Buffer>;
}

export interface TarReaderOptions {
  /** Largest PAX or GNU long-name body accepted (they are held in memory). */
  maxMetaBytes?: number;
}

export const DEFAULT_TAR_MAX_META_BYTES = 1024 * 1024;

/** Pulls exact byte counts out of an async chunk source, holding at most one chunk plus the request. */
export class ByteSource {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private done = false;
  private readonly it: AsyncIterator<Buffer | string>;

  constructor(source: AsyncIterable<Buffer | string>) {
    this.it = source[Symbol.asyncIterator]();
  }

  private async fill(): Promise<boolean> {
    if (this.done) return false;
    const r = await this.it.next();
    if (r.done) {
      this.done = true;
      return false;
    }
    const buf = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    if (buf.length > 0) {
      this.chunks.push(buf);
      this.buffered += buf.length;
    }
    return true;
  }

  /** Exactly `n` bytes, or fewer only at the end of input. */
  async read(n: number): Promise<Buffer> {
    while (this.buffered < n && (await this.fill()));
    const take = Math.min(n, this.buffered);
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, take);
    const rest = all.subarray(take);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }

  /** Up to `max` bytes, as soon as any are available; empty at the end of input. */
  async readSome(max: number): Promise<Buffer> {
    if (this.buffered === 0) {
      while (this.buffered === 0 && (await this.fill()));
      if (this.buffered === 0) return Buffer.alloc(0);
    }
    const first = this.chunks[0];
    if (first.length <= max) {
      this.chunks.shift();
      this.buffered -= first.length;
      return first;
    }
    this.chunks[0] = first.subarray(max);
    this.buffered -= max;
    return first.subarray(0, max);
  }

  async close(): Promise<void> {
    await this.it.return?.();
  }
}

function parseNumeric(field: Buffer, what: string): number {
  if (field.length > 0 && (field[0] & 0x80) !== 0) {
    // GNU base-256: big-endian two's complement with the top bit as marker.
    if ((field[0] & 0x40) !== 0) throw new TarFormatError(`negative ${what} in tar header`);
    let v = field[0] & 0x3f;
    for (let i = 1; i < field.length; i++) {
      v = v * 256 + field[i];
      if (!Number.isSafeInteger(v)) throw new TarFormatError(`${what} in tar header is too large`);
    }
    return v;
  }
  const text = field.toString('ascii').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`invalid ${what} ${JSON.stringify(text)} in tar header`);
  const v = parseInt(text, 8);
  if (!Number.isSafeInteger(v)) throw new TarFormatError(`${what} in tar header is too large`);
  return v;
}

function cString(field: Buffer): string {
  const nul = field.indexOf(0);
  return field.subarray(0, nul < 0 ? field.length : nul).toString('utf8');
}

function typeOf(flag: string): TarReadType {
  switch (flag) {
    case '0':
    case '\0':
    case '7':
      return 'file';
    case '1':
      return 'hardlink';
    case '2':
      return 'symlink';
    case '3':
      return 'char';
    case '4':
      return 'block';
    case '5':
      return 'directory';
    case '6':
      return 'fifo';
    default:
      return 'other';
  }
}

function parsePax(body: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let pos = 0;
  while (pos < body.length) {
    const space = body.indexOf(0x20, pos);
    if (space < 0) throw new TarFormatError('malformed PAX record');
    const len = Number(body.subarray(pos, space).toString('ascii'));
    if (!Number.isSafeInteger(len) || len <= space - pos || pos + len > body.length) {
      throw new TarFormatError('malformed PAX record length');
    }
    const record = body.subarray(space + 1, pos + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq <= 0) throw new TarFormatError('malformed PAX record');
    out.set(record.slice(0, eq), record.slice(eq + 1));
    pos += len;
  }
  return out;
}

function paxNumber(v: string, what: string): number {
  if (!/^[0-9]+(\.[0-9]*)?$/.test(v)) throw new TarFormatError(`invalid PAX ${what} ${JSON.stringify(v)}`);
  const n = Math.floor(Number(v));
  if (!Number.isSafeInteger(n)) throw new TarFormatError(`PAX ${what} is too large`);
  return n;
}

/**
 * Reads tar entries one by one from a byte stream. Understands ustar, PAX (`x`;
 * `g` is read and ignored) and GNU long names (`L`, `K`). Throws `TarFormatError`
 * on bad checksums, malformed numbers and truncated archives.
 */
export async function* readTar(
  source: AsyncIterable<Buffer | string>,
  options: TarReaderOptions = {},
): AsyncGenerator<TarReadEntry> {
  const maxMeta = options.maxMetaBytes ?? DEFAULT_TAR_MAX_META_BYTES;
  const src = new ByteSource(source);
  let pax = new Map<string, string>();
  let longName: string | undefined;
  let longLink: string | undefined;

  async function readMeta(size: number, kind: string): Promise<Buffer> {
    if (size > maxMeta) throw new TarMetaLimitError(maxMeta, `${kind} header of ${size} bytes exceeds the ${maxMeta}-byte limit`);
    const padded = size + padding(size).length;
    const data = await src.read(padded);
    if (data.length < padded) throw new TarFormatError('unexpected end of tar archive');
    return Buffer.from(data.subarray(0, size));
  }

  try {
    while (true) {
      const block = await src.read(BLOCK);
      if (block.length === 0) return; // tolerate archives without the end-of-archive blocks
      if (block.length < BLOCK) throw new TarFormatError('unexpected end of tar archive');
      if (block.equals(ZERO_BLOCK)) return;
      const stored = parseNumeric(block.subarray(148, 156), 'checksum');
      let sum = 0;
      for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : block[i];
      if (sum !== stored) {
        let signed = 0;
        for (let i = 0; i < BLOCK; i++) signed += i >= 148 && i < 156 ? 0x20 : (block[i] << 24) >> 24;
        if (signed !== stored) throw new TarFormatError('tar header checksum mismatch');
      }
      const typeflag = String.fromCharCode(block[156]);
      let size = parseNumeric(block.subarray(124, 136), 'size');

      if (typeflag === 'x' || typeflag === 'g') {
        const records = parsePax(await readMeta(size, 'PAX'));
        if (typeflag === 'x') pax = records;
        continue;
      }
      if (typeflag === 'L' || typeflag === 'K') {
        const value = cString(await readMeta(size, 'GNU long-name'));
        if (typeflag === 'L') longName = value;
        else longLink = value;
        continue;
      }

      let name = cString(block.subarray(0, 100));
      const magic = block.subarray(257, 263).toString('ascii');
      if (magic === 'ustar\0' || magic === 'ustar ') {
        const prefix = magic === 'ustar\0' ? cString(block.subarray(345, 500)) : '';
        if (prefix !== '') name = `${prefix}/${name}`;
      }
      let linkname = cString(block.subarray(157, 257));
      let uid = parseNumeric(block.subarray(108, 116), 'uid');
      let gid = parseNumeric(block.subarray(116, 124), 'gid');
      let mtime = parseNumeric(block.subarray(136, 148), 'mtime');
      if (longName !== undefined) name = longName;
      if (longLink !== undefined) linkname = longLink;
      const p = pax;
      if (p.has('path')) name = p.get('path') as string;
      if (p.has('linkpath')) linkname = p.get('linkpath') as string;
      if (p.has('size')) size = paxNumber(p.get('size') as string, 'size');
      if (p.has('uid')) uid = paxNumber(p.get('uid') as string, 'uid');
      if (p.has('gid')) gid = paxNumber(p.get('gid') as string, 'gid');
      if (p.has('mtime')) mtime = paxNumber(p.get('mtime') as string, 'mtime');
      pax = new Map();
      longName = undefined;
      longLink = undefined;

      const type = typeOf(typeflag);
      // Only regular files (and unknown types) carry data; a size on links or dirs is ignored by spec.
      const dataSize = type === 'file' || type === 'other' ? size : 0;
      const header: TarHeader = {
        name: name.length > 1 ? name.replace(/\/+$/, '') : name,
        type,
        typeflag,
        mode: parseNumeric(block.subarray(100, 108), 'mode') & 0o7777,
        uid,
        gid,
        size: dataSize,
        mtime,
        linkname,
        devMajor: parseNumeric(block.subarray(329, 337), 'devmajor'),
        devMinor: parseNumeric(block.subarray(337, 345), 'devminor'),
      };
      let remaining = dataSize;
      const body = (async function* (): AsyncGenerator<Buffer> {
        while (remaining > 0) {
          const chunk = await src.readSome(Math.min(remaining, 1 << 20));
          if (chunk.length === 0) throw new TarFormatError('unexpected end of tar archive inside an entry');
          remaining -= chunk.length;
          yield chunk;
        }
      })();
      yield { header, body };
      while (remaining > 0) {
        const chunk = await src.readSome(Math.min(remaining, 1 << 20));
        if (chunk.length === 0) throw new TarFormatError('unexpected end of tar archive inside an entry');
        remaining -= chunk.length;
      }
      const pad = padding(dataSize).length;
      if (pad > 0 && (await src.read(pad)).length < pad) throw new TarFormatError('unexpected end of tar archive');
    }
  } finally {
    await src.close();
  }
}
