// Bytes under a directory, like `du -s --one-file-system`: mounts below it (prepared EROFS images) are not entered.
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export async function directoryBytes(dir: string): Promise<number> {
  let root;
  try {
    root = await lstat(dir);
  } catch {
    return 0;
  }
  let total = 0;
  const pending = [dir];
  while (pending.length > 0) {
    const d = pending.pop()!;
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      continue; // removed while walking (eviction, a finished upload)
    }
    for (const name of names) {
      const p = join(d, name);
      const st = await lstat(p).catch(() => undefined);
      if (!st || st.dev !== root.dev) continue;
      if (st.isDirectory()) pending.push(p);
      else total += st.blocks * 512;
    }
  }
  return total;
}
