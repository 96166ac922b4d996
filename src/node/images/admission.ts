/**
 * Admission of an image's root filesystem (issue 11, security case 15): an
 * initrd whose tree holds a device node, a fifo, a socket, or a setuid/setgid
 * file is refused before it is ever marked ready, with EINVAL naming the file.
 *
 * Why refuse rather than neutralise: every layer is mounted nodev,nosuid and a
 * device cgroup allows only the standard set, so such entries would be inert;
 * refusing says so to the image's author instead of running something that
 * differs from what was built, and keeps another tenant's bytes (a block device
 * naming a loop device) out of the cache altogether.
 *
 * CPIO initrds are read with the project's one reader (src/oci) before
 * extraction; EROFS images are walked once mounted (read-only, nodev, nosuid).
 */
import { createReadStream } from 'node:fs';
import { lstat, opendir } from 'node:fs/promises';
import { join } from 'node:path';
import { readCpio, type CpioEntryType } from '../../oci/index.js';
import { Errno, NodeError } from '../errors.js';

const SETID_BITS = 0o6000;

/** Why an entry is refused, or undefined when it is an ordinary file, directory or symlink. */
export function refusalOf(type: CpioEntryType, mode: number): string | undefined {
  switch (type) {
    case 'char':
      return 'a character device node';
    case 'block':
      return 'a block device node';
    case 'fifo':
      return 'a fifo';
    case 'socket':
      return 'a socket';
    default:
      if (type !== 'symlink' && (mode & SETID_BITS) !== 0) return `a ${mode & 0o4000 ? 'setuid' : 'setgid'} ${type}`;
      return undefined;
  }
}

function printable(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

function refuse(what: string, name: string, reason: string): NodeError {
  return new NodeError(Errno.EINVAL, `${what}: its initrd holds ${reason} at ${printable(name)}; device nodes, fifos, sockets and setuid/setgid files are not admitted`);
}

/** Refuses (EINVAL) a CPIO newc initrd holding special or setid entries; `what` names the layer. */
export async function admitCpio(path: string, what: string): Promise<void> {
  for await (const entry of readCpio(createReadStream(path))) {
    const reason = refusalOf(entry.header.type, entry.header.mode);
    if (reason) throw refuse(what, `/${entry.header.name.replace(/^\.?\/+/, '')}`, reason);
  }
}

function typeOf(st: import('node:fs').Stats): CpioEntryType {
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  if (st.isSocket()) return 'socket';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'directory';
  return 'file';
}

/** Refuses (EINVAL) a mounted tree (an EROFS image) holding special or setid entries. Never follows links. */
export async function admitTree(root: string, what: string): Promise<void> {
  const walk = async (dir: string, shown: string): Promise<void> => {
    const st = await lstat(dir);
    const reason = refusalOf(typeOf(st), st.mode);
    if (reason) throw refuse(what, shown || '/', reason);
    for await (const entry of await opendir(dir)) {
      const path = join(dir, entry.name);
      const name = `${shown}/${entry.name}`;
      if (entry.isDirectory()) {
        await walk(path, name);
        continue;
      }
      const s = await lstat(path);
      const r = refusalOf(typeOf(s), s.mode);
      if (r) throw refuse(what, name, r);
    }
  };
  await walk(root, '');
}
