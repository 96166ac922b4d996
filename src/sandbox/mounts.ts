// Host-side mount helpers: overlay, read-only EROFS images on loop devices, unmount with
// retries, and a view of the mount table. These run mount(8)/umount(8): they happen once
// per image digest or per stage, not per instance start (instances mount their overlay
// inside their own mount namespace through the launcher, which leaves nothing behind).
import { execFile } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { promisify } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { unescapeMountPath } from './cgroups.js';

const run = promisify(execFile);

export const DEFAULT_UMOUNT_RETRIES = 10;
export const DEFAULT_UMOUNT_RETRY_DELAY_MS = 50;

export interface MountInfo {
  mountPoint: string;
  fsType: string;
  source: string;
  /** Per-mount options (ro/rw, nosuid, …). */
  options: string[];
}

/** Parse /proc/<pid>/mountinfo text. */
export function parseMountInfo(text: string): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    out.push({
      mountPoint: unescapeMountPath(left[4] ?? ''),
      options: (left[5] ?? '').split(','),
      fsType: right[0] ?? '',
      source: unescapeMountPath(right[1] ?? ''),
    });
  }
  return out;
}

export function listMounts(): MountInfo[] {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'));
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function isMountPoint(path: string): boolean {
  const p = canonical(path);
  return listMounts().some((m) => m.mountPoint === p);
}

/** Mounts at or below `path` (deepest last in mount order). */
export function mountsUnder(path: string): MountInfo[] {
  const p = canonical(path).replace(/\/$/, '');
  return listMounts().filter((m) => m.mountPoint === p || m.mountPoint.startsWith(p + '/'));
}

function checkOverlayPath(p: string): void {
  // overlay options are comma/colon separated; such paths cannot be expressed safely.
  if (/[,:\n]/.test(p) || !p.startsWith('/')) throw new TypeError(`overlay path must be absolute without , or : — ${p}`);
}

export interface OverlaySpec {
  /** Top-most first. */
  lower: string[];
  upper?: string;
  work?: string;
  target: string;
}

/** Mount an overlay; without upper/work it is read-only (the kernel then wants at least two lower dirs). */
export async function mountOverlay(spec: OverlaySpec): Promise<void> {
  if (spec.lower.length === 0) throw new TypeError('overlay needs at least one lower dir');
  [...spec.lower, spec.target].forEach(checkOverlayPath);
  let opts = `lowerdir=${spec.lower.join(':')}`;
  if (spec.upper || spec.work) {
    if (!spec.upper || !spec.work) throw new TypeError('overlay upper and work go together');
    checkOverlayPath(spec.upper);
    checkOverlayPath(spec.work);
    opts += `,upperdir=${spec.upper},workdir=${spec.work}`;
  } else if (spec.lower.length < 2) {
    throw new TypeError('a read-only overlay needs at least two lower dirs');
  }
  await run('mount', ['-t', 'overlay', 'overlay', '-o', opts, spec.target]);
}

/** Mount an EROFS image read-only through a loop device. */
export async function mountErofs(image: string, target: string): Promise<void> {
  await run('mount', ['-t', 'erofs', '-o', 'loop,ro,nodev,nosuid', image, target]);
}

export interface UnmountOptions {
  retries?: number;
  retryDelayMs?: number;
  /** After the retries, detach lazily instead of failing. */
  lazyFallback?: boolean;
}

/** Unmount `target` (and anything mounted below it); an unmounted target is not an error. */
export async function unmount(target: string, opts: UnmountOptions = {}): Promise<void> {
  const retries = opts.retries ?? DEFAULT_UMOUNT_RETRIES;
  const delay = opts.retryDelayMs ?? DEFAULT_UMOUNT_RETRY_DELAY_MS;
  for (let attempt = 0; ; attempt++) {
    const mounted = mountsUnder(target).reverse();
    if (mounted.length === 0) return;
    try {
      for (const m of mounted) await run('umount', [m.mountPoint]);
    } catch (e) {
      if (attempt >= retries) {
        if (!opts.lazyFallback) throw e;
        for (const m of mountsUnder(target).reverse()) await run('umount', ['-l', m.mountPoint]).catch(() => undefined);
        return;
      }
      await sleep(delay);
    }
  }
}
