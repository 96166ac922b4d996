import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createCpioStream } from './cpio.js';

const EPOCH = 1_600_000_000;

async function buildTree(root: string, mtime: number): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'etc/ssl'), { recursive: true });
  await mkdir(join(root, 'tmp'));
  await writeFile(join(root, 'bin/tool'), Buffer.alloc(10_001, 0x61));
  await chmod(join(root, 'bin/tool'), 0o4755);
  await chmod(join(root, 'tmp'), 0o1777);
  await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  await chmod(join(root, 'etc/ssl'), 0o2750);
  await link(join(root, 'bin/tool'), join(root, 'bin/tool-a'));
  await link(join(root, 'bin/tool'), join(root, 'etc/tool-b'));
  await symlink('../etc/hosts', join(root, 'bin/hosts-link'));
  await symlink('/does/not/exist', join(root, 'dangling'));
  await writeFile(join(root, 'empty'), '');
  execFileSync('mkfifo', [join(root, 'fifo')]);
  for (const p of ['bin/tool', 'etc/hosts', 'empty', 'bin', 'etc/ssl', 'etc', 'tmp', '.']) {
    await utimes(join(root, p), mtime, mtime);
  }
}

async function writeArchive(src: string, file: string, options: Parameters<typeof createCpioStream>[1] = {}): Promise<string> {
  await pipeline(createCpioStream(src, options), createWriteStream(file));
  return createHash('sha256').update(await readFile(file)).digest('hex');
}

function extract(archive: string, dest: string, tool: 'gnu' | 'busybox' = 'gnu'): void {
  execFileSync('mkdir', ['-p', dest]);
  const cmd = tool === 'gnu' ? 'cpio -idm --quiet' : 'busybox cpio -idm';
  execFileSync('sh', ['-c', `${cmd} < "${archive}"`], { cwd: dest });
}

async function checkExtracted(dest: string): Promise<void> {
  const tool = await lstat(join(dest, 'bin/tool'));
  assert.equal(tool.mode & 0o7777, 0o4755, 'setuid kept');
  assert.equal((await readFile(join(dest, 'bin/tool'))).length, 10_001);
  assert.equal((await lstat(join(dest, 'bin/tool-a'))).ino, tool.ino, 'hardlink restored');
  assert.equal((await lstat(join(dest, 'etc/tool-b'))).ino, tool.ino, 'hardlink restored across directories');
  assert.equal(tool.nlink, 3);
  assert.equal((await lstat(join(dest, 'tmp'))).mode & 0o7777, 0o1777, 'sticky kept');
  assert.equal((await lstat(join(dest, 'etc/ssl'))).mode & 0o7777, 0o2750, 'setgid kept');
  assert.equal(await readlink(join(dest, 'bin/hosts-link')), '../etc/hosts');
  assert.equal(await readlink(join(dest, 'dangling')), '/does/not/exist');
  assert.equal(await readFile(join(dest, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
  assert.equal((await readFile(join(dest, 'empty'))).length, 0);
  await assert.rejects(lstat(join(dest, 'fifo')), { code: 'ENOENT' });
}

test('newc archive extracts with GNU cpio -idm: contents, modes, hardlinks, symlinks, clamped mtimes', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-cpio-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  await buildTree(join(base, 'src'), EPOCH + 1000);
  const warnings: string[] = [];
  await writeArchive(join(base, 'src'), join(base, 'a.cpio'), { sourceDateEpoch: EPOCH, onWarning: (m) => warnings.push(m) });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0], /fifo fifo/);

  const listing = execFileSync('cpio', ['-t', '--quiet', '-F', join(base, 'a.cpio')], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(listing, [
    '.',
    './bin',
    './bin/hosts-link',
    './bin/tool',
    './bin/tool-a',
    './dangling',
    './empty',
    './etc',
    './etc/hosts',
    './etc/ssl',
    './etc/tool-b',
    './tmp',
  ]);
  const verbose = execFileSync('cpio', ['-tv', '--quiet', '--numeric-uid-gid', '-F', join(base, 'a.cpio')], { encoding: 'utf8' });
  for (const line of verbose.trim().split('\n')) assert.match(line, /^\S+\s+\d+\s+0\s+0\s/, `all-root ownership: ${line}`);

  const dest = join(base, 'out');
  extract(join(base, 'a.cpio'), dest);
  await checkExtracted(dest);
  assert.equal((await lstat(join(dest, 'bin/tool'))).mtimeMs / 1000, EPOCH, 'mtime clamped to the epoch');
  assert.equal((await lstat(join(dest, 'etc'))).uid, 0);

  // busybox's cpio (a different reader) restores the same tree.
  const bb = join(base, 'out-bb');
  extract(join(base, 'a.cpio'), bb, 'busybox');
  await checkExtracted(bb);
});

test('hardlink data on the first link also restores with GNU cpio', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-cpio-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  await buildTree(join(base, 'src'), EPOCH);
  await writeArchive(join(base, 'src'), join(base, 'first.cpio'), { hardlinkData: 'first' });
  const dest = join(base, 'out');
  extract(join(base, 'first.cpio'), dest);
  await checkExtracted(dest);
  const bytes = await readFile(join(base, 'first.cpio'));
  assert.equal(bytes.subarray(0, 6).toString(), '070701');
  assert.equal(bytes.length % 4, 0, 'padded to 4 bytes');
  assert.ok(bytes.includes(Buffer.from('TRAILER!!!\0')));
});

test('same tree gives the same bytes; mtimes above the epoch do not matter, below it they do', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-cpio-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  await buildTree(join(base, 'one'), EPOCH + 50);
  await buildTree(join(base, 'two'), EPOCH + 5000);
  const h1 = await writeArchive(join(base, 'one'), join(base, '1.cpio'), { sourceDateEpoch: EPOCH });
  const h1again = await writeArchive(join(base, 'one'), join(base, '1b.cpio'), { sourceDateEpoch: EPOCH });
  const h2 = await writeArchive(join(base, 'two'), join(base, '2.cpio'), { sourceDateEpoch: EPOCH });
  assert.equal(h1, h1again);
  assert.equal(h1, h2, 'inode numbers and devices of the host do not leak into the archive');
  await utimes(join(base, 'two/etc/hosts'), EPOCH - 1, EPOCH - 1);
  assert.notEqual(await writeArchive(join(base, 'two'), join(base, '3.cpio'), { sourceDateEpoch: EPOCH }), h1);
});

test('keepOwners keeps numeric owners; filter leaves paths out', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-cpio-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const src = join(base, 'src');
  await buildTree(src, EPOCH);
  await chown(join(src, 'etc/hosts'), 1234, 5678);
  await writeArchive(src, join(base, 'o.cpio'), { keepOwners: true, filter: (p) => p !== 'bin' && p !== 'fifo' });
  const dest = join(base, 'out');
  extract(join(base, 'o.cpio'), dest);
  const hosts = await lstat(join(dest, 'etc/hosts'));
  assert.equal(hosts.uid, 1234);
  assert.equal(hosts.gid, 5678);
  await assert.rejects(lstat(join(dest, 'bin')), { code: 'ENOENT' });
  // Only one link of the group survived the filter: it must carry the data itself.
  assert.equal((await readFile(join(dest, 'etc/tool-b'))).length, 10_001);
});
