/**
 * RUN steps: the command runs chrooted into the stage rootfs in fresh mount,
 * pid, uts and ipc namespaces (util-linux `unshare`, as root), with /proc, a
 * small tmpfs /dev (null, zero, full, random, urandom, tty bound from the host)
 * and the host's /etc/resolv.conf mounted in, an explicit environment (the
 * builder's own never leaks in), a timeout, and the whole process group killed
 * at the end. Mounts live in the step's mount namespace and vanish with it;
 * mount-point stubs we had to create are removed afterwards, so nothing of the
 * sandbox reaches the layer.
 *
 * (The `sandbox` helper's native launcher is meant to replace this driver.)
 */
import { spawn } from 'node:child_process';
import { lstat, mkdir, rmdir, rm, writeFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface RunStepOptions {
  rootfs: string;
  argv: string[];
  env: string[];
  /** Working directory inside the rootfs (already created). */
  cwd: string;
  uid: number;
  gid: number;
  timeoutMs?: number;
  /** Where the step's output goes. */
  onOutput?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export const DEFAULT_RUN_TIMEOUT_MS = 30 * 60_000;
const DEV_NODES = ['null', 'zero', 'full', 'random', 'urandom', 'tty'];

const SETUP = `
set -e
R="$1"; shift
/bin/mount --make-rprivate /
/bin/mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
/bin/mount -t tmpfs -o nosuid,mode=0755,size=1m tmpfs "$R/dev"
for n in ${DEV_NODES.join(' ')}; do : > "$R/dev/$n"; /bin/mount --bind "/dev/$n" "$R/dev/$n"; done
/bin/mkdir -p "$R/dev/pts" "$R/dev/shm"
/bin/ln -s /proc/self/fd "$R/dev/fd"
if [ -f "$R/etc/resolv.conf" ] && [ -f /etc/resolv.conf ]; then /bin/mount --bind -o ro /etc/resolv.conf "$R/etc/resolv.conf"; fi
exec "$@"
`;

/** Runs one command; resolves to its exit code (128+N when killed by signal N). */
export async function runStep(opts: RunStepOptions): Promise<number> {
  const created: string[] = [];
  for (const dir of ['proc', 'dev']) {
    const p = join(opts.rootfs, dir);
    const st = await lstat(p).catch(() => undefined);
    if (!st) {
      await mkdir(p, { mode: 0o755 });
      created.push(p);
    } else if (!st.isDirectory()) {
      throw new Error(`/${dir} in the rootfs is not a directory`);
    }
  }
  const resolv = join(opts.rootfs, 'etc/resolv.conf');
  const etcExists = (await lstat(join(opts.rootfs, 'etc')).catch(() => undefined))?.isDirectory() ?? false;
  let createdResolv = false;
  if (etcExists && !(await lstat(resolv).catch(() => undefined))) {
    await writeFile(resolv, '');
    createdResolv = true;
  }
  try {
    return await spawnStep(opts);
  } finally {
    if (createdResolv) await rm(resolv, { force: true });
    for (const p of created) {
      // Only remove a stub we made, and only if the step left it empty.
      if ((await readdir(p).catch(() => ['x'])).length === 0) await rmdir(p).catch(() => undefined);
    }
  }
}

function spawnStep(opts: RunStepOptions): Promise<number> {
  const inner = [
    '/usr/bin/env',
    '-i',
    ...opts.env,
    '/usr/bin/unshare',
    `--root=${opts.rootfs}`,
    `--wd=${opts.cwd}`,
    ...(opts.gid !== 0 || opts.uid !== 0 ? [`--setgid=${opts.gid}`, `--setuid=${opts.uid}`] : []),
    '--',
    ...opts.argv,
  ];
  const args = ['--mount', '--pid', '--uts', '--ipc', '--fork', '--kill-child', '--', '/bin/sh', '-c', SETUP, 'ukc-run', opts.rootfs, ...inner];
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/unshare', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: {} });
    const kill = (): void => {
      try {
        if (child.pid) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(kill, opts.timeoutMs ?? DEFAULT_RUN_TIMEOUT_MS);
    opts.signal?.addEventListener('abort', kill, { once: true });
    child.stdout.on('data', (d: Buffer) => opts.onOutput?.(d));
    child.stderr.on('data', (d: Buffer) => opts.onOutput?.(d));
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', kill);
      kill();
      if (code !== null) resolve(code);
      else resolve(128 + (signal === 'SIGKILL' ? 9 : 15));
    });
  });
}
