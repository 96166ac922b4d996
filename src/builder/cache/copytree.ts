/**
 * Copies a root filesystem tree exactly (modes incl. setuid/sticky, owners,
 * mtimes, symlinks as links, hardlinks kept, xattrs) using GNU `cp -a`, which
 * also uses reflinks where the filesystem supports them. Never follows a
 * symlink inside the tree.
 */
import { spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';

export async function copyTree(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  await new Promise<void>((resolve, reject) => {
    const child = spawn('cp', ['-a', '--reflink=auto', '--no-target-directory', from, to], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 8192) err += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`copying ${from} to ${to} failed: ${err.trim()}`))));
  });
}
