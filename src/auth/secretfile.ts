/**
 * Writing secrets to disk: the file is created with mode 0600 from its first
 * byte (never widened later), written to a temporary name, fsynced, renamed
 * over the target and the directory fsynced, so a crash leaves either the old
 * file or the whole new one — never a partial or world-readable secret
 * (util/durable.ts's writeFileAtomicSync).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { writeFileAtomicSync } from '../util/index.js';

export const SECRET_FILE_MODE = 0o600;

export function writeSecretFile(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // exactMode: a restrictive umask may have narrowed it; never wider than 0600
  writeFileAtomicSync(path, content, { mode: SECRET_FILE_MODE, exactMode: true });
}
