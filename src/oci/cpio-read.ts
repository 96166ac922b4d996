/**
 * A strict streaming reader for CPIO "newc" archives (magic 070701, and 070702
 * with its checksum over regular files' data, as GNU cpio writes it) and their
 * confined extraction, for initrds.
 *
 * Invariants:
 * - Headers are parsed strictly before use: magic, thirteen 8-digit hex fields,
 *   a name of 1..`maxNameBytes` bytes ending in exactly one NUL, NUL padding to
 *   4 bytes after the name and after the data, a known file type, no data on
 *   directories, devices, FIFOs or sockets, the archive ending with `TRAILER!!!`.
 *   Anything else is a `CpioFormatError`; a name over the limit is refused before
 *   it is read.
 * - Memory holds one chunk, one name, a symlink target (≤ `maxPathLength`) and
 *   the names of hardlinks waiting for their data (≤ `maxMetaBytes` in all).
 * - Extraction goes through extract.ts's confined writer (`extractArchive`), so
 *   it keeps every guarantee written there: nothing outside the root is touched,
 *   parents resolve inside the root, final components are never followed,
 *   devices are skipped unless allowed, bytes / entries / depth are capped.
 * - Hardlinks in newc are entries sharing (dev, ino) with nlink > 1, one of them
 *   carrying the data (GNU cpio and our writer put it on the last). Data-less
 *   members wait until the carrier is written, then are linked to it by name —
 *   links only ever join two entries of this archive, inside the root.
 */
import type { Readable } from 'node:stream';
import { CpioError } from './cpio.js';
import { ExtractLimitError, extractArchive, type ArchiveEntry, type ExtractLimits, type ExtractOptions, type ExtractResult } from './extract.js';
import { ByteSource, type TarHeader, type TarReadType } from './tar.js';

export type CpioEntryType = 'file' | 'directory' | 'symlink' | 'char' | 'block' | 'fifo' | 'socket';

export interface CpioHeader {
  /** `newc` (070701) or `crc` (070702, data checksummed). */
  format: 'newc' | 'crc';
  name: string;
  type: CpioEntryType;
  /** Full st_mode, type bits included. */
  mode: number;
  ino: number;
  uid: number;
  gid: number;
  nlink: number;
  mtime: number;
  /** Bytes of data following the header (a symlink's target is its data). */
  size: number;
  devMajor: number;
  devMinor: number;
  rdevMajor: number;
  rdevMinor: number;
  check: number;
}

export interface CpioReadEntry {
  header: CpioHeader;
  /** The entry's data; read it before asking for the next entry (it is skipped otherwise). */
  body: AsyncIterable<Buffer>;
}

export interface CpioReaderOptions {
  /** Longest entry name accepted, in bytes (without the NUL). */
  maxNameBytes?: number;
}

export const DEFAULT_CPIO_MAX_NAME_BYTES = 4096;

export class CpioFormatError extends CpioError {
  constructor(message: string) {
    super(message);
    this.name = 'CpioFormatError';
  }
}

/** An entry name longer than the reader's `maxNameBytes` (refused before it is read). */
export class CpioNameLimitError extends CpioFormatError {
  constructor(
    readonly limit: number,
    message: string,
  ) {
    super(message);
    this.name = 'CpioNameLimitError';
  }
}

const HEADER_BYTES = 110;
const TRAILER = 'TRAILER!!!';
const FIELDS = ['ino', 'mode', 'uid', 'gid', 'nlink', 'mtime', 'filesize', 'devmajor', 'devminor', 'rdevmajor', 'rdevminor', 'namesize', 'check'] as const;
const HEX8 = /^[0-9A-Fa-f]{8}$/;

const TYPES: ReadonlyMap<number, CpioEntryType> = new Map([
  [0o100000, 'file'],
  [0o040000, 'directory'],
  [0o120000, 'symlink'],
  [0o020000, 'char'],
  [0o060000, 'block'],
  [0o010000, 'fifo'],
  [0o140000, 'socket'],
]);

function pad4(n: number): number {
  return (4 - (n % 4)) % 4;
}

function parseHeader(block: Buffer): Omit<CpioHeader, 'name' | 'type'> & { nameSize: number; typeBits: number } {
  const magic = block.subarray(0, 6).toString('latin1');
  if (magic !== '070701' && magic !== '070702') throw new CpioFormatError('not a CPIO newc archive (bad magic)');
  const v: Record<(typeof FIELDS)[number], number> = Object.create(null) as Record<(typeof FIELDS)[number], number>;
  FIELDS.forEach((field, i) => {
    const text = block.subarray(6 + i * 8, 14 + i * 8).toString('latin1');
    if (!HEX8.test(text)) throw new CpioFormatError(`CPIO header field ${field} is not 8 hex digits`);
    v[field] = parseInt(text, 16);
  });
  return {
    format: magic === '070702' ? 'crc' : 'newc',
    ino: v.ino,
    mode: v.mode,
    typeBits: v.mode & 0o170000,
    uid: v.uid,
    gid: v.gid,
    nlink: v.nlink,
    mtime: v.mtime,
    size: v.filesize,
    devMajor: v.devmajor,
    devMinor: v.devminor,
    rdevMajor: v.rdevmajor,
    rdevMinor: v.rdevminor,
    check: v.check,
    nameSize: v.namesize,
  };
}

async function readPadding(src: ByteSource, n: number, where: string): Promise<void> {
  if (n === 0) return;
  const pad = await src.read(n);
  if (pad.length < n) throw new CpioFormatError('truncated CPIO archive');
  if (pad.some((b) => b !== 0)) throw new CpioFormatError(`CPIO padding after ${where} is not zero`);
}

/** Entries of a newc archive, in archive order, up to (not including) `TRAILER!!!`. */
export async function* readCpio(source: AsyncIterable<Buffer | string>, options: CpioReaderOptions = {}): AsyncGenerator<CpioReadEntry> {
  const maxName = options.maxNameBytes ?? DEFAULT_CPIO_MAX_NAME_BYTES;
  const src = new ByteSource(source);
  try {
    while (true) {
      const block = await src.read(HEADER_BYTES);
      if (block.length < HEADER_BYTES) throw new CpioFormatError(block.length === 0 ? 'CPIO archive ends without TRAILER!!!' : 'truncated CPIO archive');
      const h = parseHeader(block);
      if (h.nameSize < 2) throw new CpioFormatError('CPIO entry with an empty name');
      if (h.nameSize - 1 > maxName) {
        throw new CpioNameLimitError(maxName, `CPIO entry name of ${h.nameSize - 1} bytes is longer than ${maxName}`);
      }
      const nameBytes = await src.read(h.nameSize);
      if (nameBytes.length < h.nameSize) throw new CpioFormatError('truncated CPIO archive');
      const nul = nameBytes.indexOf(0);
      if (nul !== h.nameSize - 1) throw new CpioFormatError('CPIO entry name is not terminated by exactly one NUL');
      const name = nameBytes.subarray(0, nul).toString('utf8');
      await readPadding(src, pad4(HEADER_BYTES + h.nameSize), `the name "${name.slice(0, 80)}"`);
      if (name === TRAILER) return;

      const type = TYPES.get(h.typeBits);
      if (type === undefined) throw new CpioFormatError(`CPIO entry "${name.slice(0, 80)}" has unknown file type ${h.typeBits.toString(8)}`);
      if (h.size !== 0 && type !== 'file' && type !== 'symlink') {
        throw new CpioFormatError(`CPIO ${type} entry "${name.slice(0, 80)}" carries data`);
      }
      const { nameSize: _n, typeBits: _t, ...fields } = h;
      void _n;
      void _t;
      const header: CpioHeader = { ...fields, name, type };

      let remaining = h.size;
      let sum = 0;
      const take = async (): Promise<Buffer> => {
        const chunk = await src.readSome(Math.min(remaining, 1 << 20));
        if (chunk.length === 0) throw new CpioFormatError('truncated CPIO archive inside an entry');
        remaining -= chunk.length;
        if (header.format === 'crc' && header.type === 'file') for (const b of chunk) sum = (sum + b) >>> 0;
        return chunk;
      };
      const body = (async function* (): AsyncGenerator<Buffer> {
        while (remaining > 0) yield await take();
      })();
      yield { header, body };
      while (remaining > 0) await take();
      if (header.format === 'crc' && header.type === 'file' && sum !== header.check) {
        throw new CpioFormatError(`CPIO entry "${name.slice(0, 80)}" fails its checksum`);
      }
      await readPadding(src, pad4(h.size), `the data of "${name.slice(0, 80)}"`);
    }
  } finally {
    await src.close();
  }
}

// ---------------------------------------------------------------------------
// Extraction

const TAR_TYPE: Record<CpioEntryType, { type: TarReadType; flag: string }> = {
  file: { type: 'file', flag: '0' },
  directory: { type: 'directory', flag: '5' },
  symlink: { type: 'symlink', flag: '2' },
  char: { type: 'char', flag: '3' },
  block: { type: 'block', flag: '4' },
  fifo: { type: 'fifo', flag: '6' },
  socket: { type: 'other', flag: 's' },
};

function tarHeader(h: CpioHeader, size: number, linkname = ''): TarHeader {
  const t = TAR_TYPE[h.type];
  return {
    name: h.name,
    type: t.type,
    typeflag: t.flag,
    mode: h.mode & 0o7777,
    uid: h.uid,
    gid: h.gid,
    size,
    mtime: h.mtime,
    linkname,
    devMajor: h.rdevMajor,
    devMinor: h.rdevMinor,
  };
}

function hardlinkTo(h: CpioHeader, target: string): ArchiveEntry {
  return { header: { ...tarHeader(h, 0, target), type: 'hardlink', typeflag: '1' }, body: emptyBody() };
}

async function* emptyBody(): AsyncGenerator<Buffer> {
  // no data
}

async function readAll(body: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

interface LinkGroup {
  /** Name of the member that was written with the data, once seen. */
  carrier?: string;
  /** Members seen before the carrier (headers kept for the no-carrier case). */
  waiting: CpioHeader[];
}

/** Maps newc entries onto the confined writer's tar-shaped entries (see the file comment for hardlinks). */
function cpioEntries(bytes: AsyncIterable<Buffer>, limits: Readonly<ExtractLimits>): AsyncIterable<ArchiveEntry> {
  return (async function* (): AsyncGenerator<ArchiveEntry> {
    const groups = new Map<string, LinkGroup>();
    let waitingBytes = 0;
    try {
      for await (const { header: h, body } of readCpio(bytes, { maxNameBytes: limits.maxPathLength })) {
        if (h.type === 'symlink') {
          if (h.size > limits.maxPathLength) {
            throw new ExtractLimitError('maxPathLength', limits.maxPathLength, `symlink target of "${h.name.slice(0, 80)}" is longer than ${limits.maxPathLength} bytes (maxPathLength)`);
          }
          yield { header: tarHeader(h, 0, (await readAll(body)).toString('utf8')), body: emptyBody() };
          continue;
        }
        if (h.type !== 'file' || h.nlink < 2) {
          yield { header: tarHeader(h, h.size), body };
          continue;
        }
        const key = `${h.devMajor}:${h.devMinor}:${h.ino}`;
        let group = groups.get(key);
        if (group === undefined) {
          group = { waiting: [] };
          groups.set(key, group);
        }
        if (h.size === 0 && group.carrier !== undefined) {
          yield hardlinkTo(h, group.carrier);
          continue;
        }
        if (h.size === 0) {
          waitingBytes += Buffer.byteLength(h.name);
          if (waitingBytes > limits.maxMetaBytes) {
            throw new ExtractLimitError('maxMetaBytes', limits.maxMetaBytes, `hardlink names waiting for their data exceed ${limits.maxMetaBytes} bytes (maxMetaBytes)`);
          }
          group.waiting.push(h);
          continue;
        }
        yield { header: tarHeader(h, h.size), body };
        group.carrier = h.name;
        for (const w of group.waiting.splice(0)) {
          waitingBytes -= Buffer.byteLength(w.name);
          yield hardlinkTo(w, h.name);
        }
      }
      // Groups whose data never came are empty files: the first member is written, the rest link to it.
      for (const group of groups.values()) {
        const [first, ...rest] = group.waiting;
        if (first === undefined) continue;
        yield { header: tarHeader(first, 0), body: emptyBody() };
        for (const w of rest) yield hardlinkTo(w, first.name);
      }
    } catch (err) {
      if (err instanceof CpioNameLimitError) {
        throw new ExtractLimitError('maxPathLength', limits.maxPathLength, `${err.message} (maxPathLength)`);
      }
      throw err;
    }
  })();
}

/** Options for `extractCpio`: those of extract.ts, without OCI layer mode (an initrd has no whiteouts). */
export type CpioExtractOptions = Omit<ExtractOptions, 'mode' | 'mediaType'>;

/**
 * Extracts a newc archive (plain, gzip or zstd: detected) into `root`, confined
 * and limited as extract.ts does. Errors: `ExtractError` (path, limit),
 * `CpioFormatError`.
 */
export function extractCpio(root: string, source: Readable | AsyncIterable<Buffer>, options: CpioExtractOptions = {}): Promise<ExtractResult> {
  return extractArchive(root, source, { ...options, mode: 'plain' }, cpioEntries);
}
