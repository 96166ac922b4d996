// Shared fixtures for the sandbox end-to-end tests: a busybox rootfs in a temp dir.
import { copyFileSync, mkdirSync, mkdtempSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BUSYBOX = '/bin/busybox';
export const IS_ROOT = process.getuid?.() === 0;

const APPLETS = ['sh', 'ps', 'ls', 'cat', 'hostname', 'id', 'env', 'true', 'sleep', 'echo', 'mkdir', 'touch', 'ping', 'nc', 'ip', 'dd', 'head', 'wc'];

/** A temp dir holding `root/` (busybox + applet links under /bin); returns both paths. */
export function makeBusyboxRoot(prefix = 'ukc-sbx-'): { dir: string; root: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const root = join(dir, 'root');
  mkdirSync(join(root, 'bin'), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  for (const a of APPLETS) symlinkSync('busybox', join(root, 'bin', a));
  return { dir, root };
}

export const PATH_ENV = 'PATH=/bin';
