/**
 * `--chown` and USER name resolution in a stage's own /etc/passwd and
 * /etc/group (read through the confined resolver, so a stage cannot point
 * them at host files).
 */
import { readFile } from 'node:fs/promises';
import { resolveInRoot } from './inroot.js';
import type { Owner } from './copy.js';

async function readDb(root: string, path: string): Promise<string[][]> {
  try {
    const text = await readFile(await resolveInRoot(root, path), 'utf8');
    return text.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

const NUMERIC = /^\d+$/;

/** Resolves `user[:group]` (names or numbers) in the stage `root`. */
export async function resolveOwner(root: string, spec: string): Promise<Owner> {
  const [userPart = '', groupPart] = spec.split(':', 2);
  let uid: number;
  let gid: number | undefined;
  if (NUMERIC.test(userPart)) {
    uid = Number(userPart);
  } else {
    const entry = (await readDb(root, '/etc/passwd')).find((f) => f[0] === userPart);
    if (!entry) throw new Error(`unknown user "${userPart}" (not in the stage's /etc/passwd)`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (NUMERIC.test(groupPart)) gid = Number(groupPart);
    else {
      const entry = (await readDb(root, '/etc/group')).find((f) => f[0] === groupPart);
      if (!entry) throw new Error(`unknown group "${groupPart}" (not in the stage's /etc/group)`);
      gid = Number(entry[2]);
    }
  } else if (gid === undefined) {
    gid = uid;
  }
  if (!Number.isSafeInteger(uid) || !Number.isSafeInteger(gid)) throw new Error(`bad owner "${spec}"`);
  return { uid, gid: gid as number };
}
