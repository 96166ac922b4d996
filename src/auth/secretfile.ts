/**
 * Writing secrets to disk: the file is created with mode 0600 from its first
 * byte (never widened later), written to a temporary name, fsynced, renamed
 * over the target and the directory fsynced, so a crash leaves either the old
 * file or the whole new one — never a partial or world-readable secret.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync, chmodSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { dirname, join, basename } from 'node:path';

export const SECRET_FILE_MODE = 0o600;

export function writeSecretFile(path: string, content: string): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = join(dir, `.${basename(path)}.${randomUUID()}.tmp`);
  const fd = openSync(tmp, 'wx', SECRET_FILE_MODE);
  try {
    try {
      chmodSync(tmp, SECRET_FILE_MODE); // a restrictive umask may have narrowed it; never wider than 0600
      writeSync(fd, content);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
  const dfd = openSync(dir, 'r');
  try {
    fsyncSync(dfd);
  } finally {
    closeSync(dfd);
  }
}
