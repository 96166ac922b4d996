import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmod, link, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createWriteStream } from 'node:fs';
import { TarFormatError, createTarStream, readTar, tarDirectory, type TarEntry, type TarHeader } from './tar.js';

async function hashStream(s: Readable): Promise<string> {
  const h = createHash('sha256');
  for await (const c of s) h.update(c as Buffer);
  return h.digest('hex');
}

async function collect(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

async function readAll(s: Readable): Promise<Array<{ header: TarHeader; data: Buffer }>> {
  const out: Array<{ header: TarHeader; data: Buffer }> = [];
  for await (const e of readTar(s)) {
    const parts: Buffer[] = [];
    for await (const c of e.body) parts.push(c);
    out.push({ header: e.header, data: Buffer.concat(parts) });
  }
  return out;
}

async function makeTree(root: string, mtime: number): Promise<void> {
  await mkdir(join(root, 'a/b'), { recursive: true });
  await mkdir(join(root, 'a.d'));
  await writeFile(join(root, 'a/b/file.txt'), 'hello\n');
  await writeFile(join(root, 'a.txt'), 'x'.repeat(1000));
  await writeFile(join(root, 'suid'), '#!/bin/sh\n');
  await chmod(join(root, 'suid'), 0o4755);
  await chmod(join(root, 'a.d'), 0o1777);
  await link(join(root, 'a/b/file.txt'), join(root, 'z-hard'));
  await symlink('../a.txt', join(root, 'a/link'));
  const long = 'l'.repeat(120);
  await mkdir(join(root, long));
  await writeFile(join(root, long, 'deep-file-with-a-long-name'), 'long');
  for (const p of ['a/b/file.txt', 'a.txt', 'suid', `${long}/deep-file-with-a-long-name`, 'a/b', 'a', 'a.d', long, '.']) {
    await utimes(join(root, p), mtime, mtime);
  }
}

test('tarDirectory is deterministic and clamps mtimes to SOURCE_DATE_EPOCH', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-tar-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const epoch = 1_700_000_000;
  await makeTree(join(base, 'one'), epoch + 5000);
  const h1 = await hashStream(tarDirectory(join(base, 'one'), { sourceDateEpoch: epoch }));
  const h2 = await hashStream(tarDirectory(join(base, 'one'), { sourceDateEpoch: epoch }));
  assert.equal(h1, h2, 'same tree, same bytes');

  // A second tree with the same content but other (newer) mtimes gives the same bytes.
  await makeTree(join(base, 'two'), epoch + 99999);
  assert.equal(await hashStream(tarDirectory(join(base, 'two'), { sourceDateEpoch: epoch })), h1);

  // Older mtimes are kept, so they change the archive.
  await utimes(join(base, 'two', 'a.txt'), epoch - 10, epoch - 10);
  assert.notEqual(await hashStream(tarDirectory(join(base, 'two'), { sourceDateEpoch: epoch })), h1);
});

test('tarDirectory orders bytewise with parents first, keeps special bits, hardlinks and long names', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-tar-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const src = join(base, 'src');
  await makeTree(src, 1000);
  const entries = await readAll(tarDirectory(src, { sourceDateEpoch: 2000, owner: { uid: 0, gid: 0 } }));
  const names = entries.map((e) => e.header.name);
  const long = 'l'.repeat(120);
  assert.deepEqual(names, [
    'a',
    'a.d',
    'a.txt',
    'a/b',
    'a/b/file.txt',
    'a/link',
    long,
    `${long}/deep-file-with-a-long-name`,
    'suid',
    'z-hard',
  ]);
  const by = new Map(entries.map((e) => [e.header.name, e]));
  assert.equal(by.get('suid')?.header.mode, 0o4755);
  assert.equal(by.get('a.d')?.header.mode, 0o1777);
  assert.equal(by.get('a.d')?.header.type, 'directory');
  assert.equal(by.get('z-hard')?.header.type, 'hardlink');
  assert.equal(by.get('z-hard')?.header.linkname, 'a/b/file.txt');
  assert.equal(by.get('a/link')?.header.linkname, '../a.txt');
  assert.equal(by.get('a/b/file.txt')?.data.toString(), 'hello\n');
  assert.equal(by.get('a/b/file.txt')?.header.mtime, 1000);
  assert.equal(by.get('a.txt')?.data.length, 1000);

  // GNU tar reads it back the same way (PAX long names, hardlinks, symlinks, modes).
  const archive = join(base, 'out.tar');
  await pipeline(tarDirectory(src, { sourceDateEpoch: 2000 }), createWriteStream(archive));
  const dst = join(base, 'dst');
  await mkdir(dst);
  execFileSync('tar', ['-xpf', archive, '-C', dst]);
  assert.equal(await readFile(join(dst, long, 'deep-file-with-a-long-name'), 'utf8'), 'long');
  assert.equal((await stat(join(dst, 'z-hard'))).ino, (await stat(join(dst, 'a/b/file.txt'))).ino);
  assert.equal(await readlink(join(dst, 'a/link')), '../a.txt');
  assert.equal((await stat(join(dst, 'suid'))).mode & 0o7777, 0o4755);
  const listing = execFileSync('tar', ['--numeric-owner', '-tvf', archive], { encoding: 'utf8' });
  assert.doesNotMatch(listing, /root|nobody/, 'no user or group names are stored');
});

test('tarDirectory filter leaves out paths and whole directories', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'ukc-tar-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  await makeTree(base, 1000);
  const entries = await readAll(tarDirectory(base, { filter: (p) => p !== 'a' && p !== 'suid', includeRoot: true }));
  assert.deepEqual(
    entries.map((e) => e.header.name).filter((n) => !n.startsWith('l')),
    ['.', 'a.d', 'a.txt', 'z-hard'],
  );
  // The first path of the hardlink group was filtered out, so z-hard carries the data itself.
  assert.equal(entries.find((e) => e.header.name === 'z-hard')?.header.type, 'file');
});

test('createTarStream writes explicit entries and round-trips through readTar', async () => {
  const big = Buffer.alloc(70_000, 7);
  const entries: TarEntry[] = [
    { type: 'directory', name: 'd', mode: 0o2755, uid: 1000, gid: 1000, mtime: 50 },
    { type: 'file', name: 'd/big', size: big.length, source: () => Readable.from([big.subarray(0, 1000), big.subarray(1000)]) },
    { type: 'file', name: 'd/small', size: 3, source: Buffer.from('abc'), uid: 9_999_999 },
    { type: 'symlink', name: 'd/s', target: 't'.repeat(150) },
    { type: 'fifo', name: 'd/p' },
    { type: 'char', name: 'd/null', devMajor: 1, devMinor: 3 },
  ];
  const bytes = await collect(createTarStream(entries, { sourceDateEpoch: 10 }));
  assert.equal(bytes.length % 512, 0);
  const back = await readAll(Readable.from([bytes]));
  assert.deepEqual(back.map((e) => [e.header.name, e.header.type]), [
    ['d', 'directory'],
    ['d/big', 'file'],
    ['d/small', 'file'],
    ['d/s', 'symlink'],
    ['d/p', 'fifo'],
    ['d/null', 'char'],
  ]);
  assert.equal(back[0].header.mtime, 10, 'clamped to the epoch');
  assert.equal(back[0].header.mode, 0o2755);
  assert.ok(back[1].data.equals(big));
  assert.equal(back[2].header.uid, 9_999_999, 'large uid via PAX');
  assert.equal(back[3].header.linkname, 't'.repeat(150));
  assert.equal(back[5].header.devMajor, 1);
  assert.equal(back[5].header.devMinor, 3);
  // Reading 1-byte chunks gives the same result (the reader does not depend on chunking).
  const slow = await readAll(Readable.from((function* () { for (let i = 0; i < bytes.length; i += 1) yield bytes.subarray(i, i + 1); })()));
  assert.deepEqual(slow.map((e) => e.data.length), back.map((e) => e.data.length));
});

test('the writer refuses sources whose size differs from the declared size', async () => {
  await assert.rejects(collect(createTarStream([{ type: 'file', name: 'f', size: 5, source: Buffer.from('abc') }])), TarFormatError);
  await assert.rejects(
    collect(createTarStream([{ type: 'file', name: 'f', size: 2, source: () => Readable.from([Buffer.from('abc')]) }])),
    /larger than the declared/,
  );
  await assert.rejects(collect(createTarStream([{ type: 'file', name: '', size: 0, source: Buffer.alloc(0) }])), TarFormatError);
});

test('the reader refuses corrupt headers, truncation and oversized PAX bodies', async () => {
  const good = await collect(createTarStream([{ type: 'file', name: 'f', size: 600, source: Buffer.alloc(600, 1) }]));
  const corrupt = Buffer.from(good);
  corrupt[10] ^= 0xff;
  await assert.rejects(readAll(Readable.from([corrupt])), /checksum/);
  await assert.rejects(readAll(Readable.from([good.subarray(0, 800)])), /unexpected end/);
  const longName = await collect(createTarStream([{ type: 'directory', name: 'n'.repeat(5000) }]));
  const entries: TarHeader[] = [];
  await assert.rejects(
    (async () => {
      for await (const e of readTar(Readable.from([longName]), { maxMetaBytes: 1000 })) entries.push(e.header);
    })(),
    /exceeds the 1000-byte limit/,
  );
});
