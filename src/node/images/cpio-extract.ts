/**
 * Confined extraction of a CPIO newc initrd into an empty directory, for the
 * `micro` runtime's rootfs cache.
 *
 * Invariant: nothing is created outside `root`. Every entry name is cleaned
 * lexically (a `..` above the root is refused), its parent is resolved inside
 * the root with symlinks followed as if `root` were `/` (resolveInRoot), and
 * the final component is created without following a symlink (O_EXCL|O_NOFOLLOW,
 * symlink(2), mkdir(2)). Device nodes, fifos and sockets are skipped (the
 * sandbox gives every instance its own /dev). Hard links (newc stores the data
 * with the last link) are written as separate files.
 */
import { constants } from 'node:fs';
import { chmod, lchown, lstat, mkdir, open, symlink, type FileHandle } from 'node:fs/promises';
import { join, relative, isAbsolute } from 'node:path';
import { cleanEntryPath, resolveInRoot } from '../../oci/extract.js';

export interface CpioExtractLimits {
  /** Total data bytes accepted. */
  maxBytes: number;
  maxEntries: number;
  /** Longest entry name. */
  maxNameBytes?: number;
}

export class CpioFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CpioFormatError';
  }
}

const HEADER_BYTES = 110;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

/** Sequential reads over a file with a small buffer. */
class Reader {
  private buf = Buffer.alloc(0);
  private pos = 0;
  offset = 0;
  constructor(private readonly fh: FileHandle) {}

  async take(n: number): Promise<Buffer> {
    const out: Buffer[] = [];
    let need = n;
    while (need > 0) {
      if (this.pos >= this.buf.length) {
        const chunk = Buffer.alloc(Math.max(65536, Math.min(need, 1 << 20)));
        const { bytesRead } = await this.fh.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) throw new CpioFormatError('truncated CPIO archive');
        this.buf = chunk.subarray(0, bytesRead);
        this.pos = 0;
      }
      const part = this.buf.subarray(this.pos, this.pos + need);
      this.pos += part.length;
      need -= part.length;
      out.push(part);
    }
    this.offset += n;
    return out.length === 1 ? (out[0] as Buffer) : Buffer.concat(out);
  }

  /** Streams `n` bytes to `sink` in bounded pieces. */
  async copy(n: number, sink: (b: Buffer) => Promise<void>): Promise<void> {
    let left = n;
    while (left > 0) {
      const piece = await this.take(Math.min(left, 1 << 20));
      await sink(Buffer.from(piece));
      left -= piece.length;
    }
  }

  async align4(): Promise<void> {
    const pad = (4 - (this.offset % 4)) % 4;
    if (pad > 0) await this.take(pad);
  }
}

function hexField(h: Buffer, index: number): number {
  const text = h.subarray(6 + index * 8, 14 + index * 8).toString('latin1');
  if (!/^[0-9a-fA-F]{8}$/.test(text)) throw new CpioFormatError(`bad CPIO header field ${index}`);
  return parseInt(text, 16);
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

export async function extractCpio(archive: string, root: string, limits: CpioExtractLimits): Promise<{ entries: number; bytes: number }> {
  const maxName = limits.maxNameBytes ?? 4096;
  const fh = await open(archive, 'r');
  const r = new Reader(fh);
  let entries = 0;
  let bytes = 0;
  const dirModes: [string, number][] = [];
  try {
    for (;;) {
      const h = await r.take(HEADER_BYTES);
      const magic = h.subarray(0, 6).toString('latin1');
      if (magic !== '070701' && magic !== '070702') throw new CpioFormatError('not a CPIO newc archive');
      const mode = hexField(h, 1);
      const uid = hexField(h, 2);
      const gid = hexField(h, 3);
      const size = hexField(h, 6);
      const nameSize = hexField(h, 11);
      if (nameSize < 1 || nameSize > maxName) throw new CpioFormatError('bad CPIO entry name length');
      const nameBuf = await r.take(nameSize);
      await r.align4();
      const name = nameBuf.subarray(0, nameSize - 1).toString('utf8');
      if (name === 'TRAILER!!!') break;
      if (++entries > limits.maxEntries) throw new CpioFormatError(`CPIO has more than ${limits.maxEntries} entries`);
      bytes += size;
      if (bytes > limits.maxBytes) throw new CpioFormatError(`CPIO holds more than ${limits.maxBytes} bytes`);
      const parts = cleanEntryPath(name);
      const type = mode & S_IFMT;
      if (parts.length === 0) {
        await r.take(size);
        await r.align4();
        continue;
      }
      const parent = await resolveInRoot(root, parts.slice(0, -1).join('/'));
      if (!inside(root, parent)) throw new CpioFormatError(`entry ${name} escapes the root`);
      await mkdir(parent, { recursive: true });
      const target = join(parent, parts[parts.length - 1] as string);
      if (type === S_IFDIR) {
        const st = await lstat(target).catch(() => undefined);
        if (!st) await mkdir(target, { mode: 0o700 });
        else if (!st.isDirectory()) throw new CpioFormatError(`entry ${name} replaces a non-directory`);
        dirModes.push([target, mode & 0o7777]);
        await lchown(target, uid, gid);
        await r.take(size);
      } else if (type === S_IFREG) {
        const out = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
        try {
          await r.copy(size, async (b) => {
            await out.write(b);
          });
          await out.chown(uid, gid);
          await out.chmod(mode & 0o7777);
        } finally {
          await out.close();
        }
      } else if (type === S_IFLNK) {
        const linkTarget = (await r.take(size)).toString('utf8');
        await symlink(linkTarget, target);
        await lchown(target, uid, gid);
      } else {
        await r.take(size); // devices, fifos, sockets: skipped by design
      }
      await r.align4();
    }
  } finally {
    await fh.close();
  }
  // Directory modes last, so a read-only directory does not block its own entries.
  for (const [dir, m] of dirModes.reverse()) await chmod(dir, m);
  return { entries, bytes };
}
