/**
 * One `ukcd` per data home. The lock is a file created with O_EXCL holding the owner's pid
 * (as PostgreSQL's postmaster.pid): a second daemon on the same home finds it, sees the
 * owner alive and refuses before it opens anything; a lock left by a process that died
 * (kill -9, power loss) names a pid that is gone and is taken over.
 */
import { mkdirSync, openSync, readFileSync, rmSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/index.js';

export const HOME_LOCK_FILE = 'ukcd.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the pid exists but belongs to another user, so it is alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the home's lock for this process; the returned function releases it. */
export function lockHome(home: string, role: string): () => void {
  mkdirSync(home, { recursive: true });
  const path = join(home, HOME_LOCK_FILE);
  for (let attempt = 0; attempt < 3; attempt++) {
    let fd: number;
    try {
      fd = openSync(path, 'wx', 0o644);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let owner = NaN;
      try {
        owner = Number.parseInt(readFileSync(path, 'utf8').split('\n')[0] ?? '', 10);
      } catch {
        // Removed between open and read: try again.
      }
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new UserError(`another ukcd (pid ${owner}) is using ${home}: stop it first, or give this one its own --home`);
      }
      rmSync(path, { force: true });
      continue;
    }
    try {
      writeSync(fd, `${process.pid}\n${role}\n`);
    } finally {
      closeSync(fd);
    }
    return () => {
      try {
        if (Number.parseInt(readFileSync(path, 'utf8'), 10) === process.pid) rmSync(path, { force: true });
      } catch {
        // Already gone.
      }
    };
  }
  throw new UserError(`cannot take the lock ${path}: it keeps reappearing`);
}
