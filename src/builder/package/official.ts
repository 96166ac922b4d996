/**
 * The platform's official runtime images, published under `official/` in the
 * central registry when the daemon first starts (ARCHITECTURE decision 2).
 *
 * `official/base-compat:latest` — what it holds, honestly: micro instances are
 * Linux sandboxes, not VMs, so the runtime carries **no kernel layer**. Its
 * initrd (CPIO newc) is a small base root filesystem that app rootfs are laid
 * over: /etc/passwd and /etc/group (root, nobody), /etc/hosts, /etc/nsswitch.conf,
 * an empty /etc/resolv.conf for the node to bind over, /tmp (1777) and empty
 * mount points /proc, /dev, /sys, /run. No shell, no libc: an app brings what it
 * runs (e.g. the Python example copies the interpreter and its libraries).
 * Built deterministically (epoch 0), so republishing is a no-op.
 */
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import type { RegistryClient } from '../../client/index.js';
import { BlobDir } from './blobs.js';
import { packageImage } from './image.js';
import { pushToRegistry } from './output.js';

export interface OfficialRuntime {
  repository: string;
  tag: string;
  digest: string;
}

/** Writes base-compat's root filesystem into `dir`. */
export async function writeBaseCompatRootfs(dir: string): Promise<void> {
  for (const d of ['etc', 'tmp', 'proc', 'dev', 'sys', 'run', 'root']) await mkdir(join(dir, d), { recursive: true });
  await chmod(join(dir, 'tmp'), 0o1777);
  await chmod(join(dir, 'root'), 0o700);
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n');
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  await writeFile(join(dir, 'etc/hosts'), '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n');
  await writeFile(join(dir, 'etc/nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files dns\n');
  await writeFile(join(dir, 'etc/resolv.conf'), '');
}

/** Builds and pushes every official runtime; answers what was published. */
export async function publishOfficialRuntimes(client: RegistryClient, opts: { workDir?: string } = {}): Promise<OfficialRuntime[]> {
  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'ukc-official-'));
  try {
    const root = join(work, 'rootfs');
    await writeBaseCompatRootfs(root);
    const blobs = new BlobDir(join(work, 'blobs'));
    const image = await packageImage({
      rootfsDir: root,
      format: 'cpio',
      epoch: 0,
      name: 'base-compat',
      refName: 'latest',
      run: { cmd: [], env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], labels: { 'org.ukc.runtime': 'base-compat', 'org.ukc.runtime.kernel': 'none (micro instances are Linux sandboxes)' } },
      blobs,
    });
    const pushed = await pushToRegistry(client, 'official/base-compat', 'latest', {
      manifest: image.manifest,
      manifestMediaType: image.manifestMediaType,
      blobs: [image.config, ...image.layers],
    });
    return [{ repository: 'official/base-compat', tag: 'latest', digest: pushed.digest.text }];
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
