import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, symlink, utimes, writeFile, chmod, lstat, readlink } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BlobDir } from './blobs.js';
import { packageImage } from './image.js';
import { mergeRunConfig } from './config.js';
import { writeSingleFileLayer, KERNEL_PATH } from './layer.js';
import { readTar } from '../../oci/index.js';

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-pkg-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

interface TarEntry {
  name: string;
  type: string;
  uid: number;
  gid: number;
  mtime: number;
  mode: number;
  uname?: string;
  size: number;
}

/** The entries of a layer tar (src/oci's reader); `uname` is read from the first ustar header's bytes. */
async function listTar(path: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  for await (const { header: h, body } of readTar(createReadStream(path) as AsyncIterable<Buffer>)) {
    entries.push({ name: h.name, type: h.type, uid: h.uid, gid: h.gid, mtime: h.mtime * 1000, mode: h.mode, size: h.size });
    for await (const chunk of body) void chunk;
  }
  const first = (await readFile(path)).subarray(0, 512);
  if (entries[0]) entries[0].uname = first.subarray(265, 297).toString('utf8').replace(/\0.*$/s, '');
  return entries;
}

async function makeRootfs(dir: string): Promise<void> {
  await mkdir(join(dir, 'usr/bin'), { recursive: true });
  await mkdir(join(dir, 'src'), { recursive: true });
  await writeFile(join(dir, 'src/server.py'), 'print("hello")\n');
  await writeFile(join(dir, 'usr/bin/tool'), '#!/bin/sh\necho hi\n');
  await chmod(join(dir, 'usr/bin/tool'), 0o4755);
  await symlink('usr/bin', join(dir, 'bin'));
}

test('packageImage writes the Unikraft layout: one uncompressed single-file initrd layer, root-owned, mtime 0', async () => {
  await withTmp(async (dir) => {
    const root = join(dir, 'rootfs');
    await makeRootfs(root);
    const blobs = new BlobDir(join(dir, 'blobs'));
    const img = await packageImage({
      rootfsDir: root,
      format: 'erofs',
      epoch: 1700000000,
      name: 'hello',
      refName: 'latest',
      run: mergeRunConfig({ kraftfile: { cmd: ['/usr/bin/python3', '/src/server.py'] } }),
      blobs,
    });
    assert.equal(img.layers.length, 1);
    const entries = await listTar(img.layers[0]!.path);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type, e.uid, e.gid, e.mtime, e.uname]),
      [['unikraft/bin/initrd', 'file', 0, 0, 0, '']],
    );
    assert.equal(entries[0]!.size, img.initrd.size);

    const manifest = JSON.parse(await readFile(img.manifest.path, 'utf8'));
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar');
    assert.equal(manifest.layers[0].digest, img.layers[0]!.digest.text);
    assert.deepEqual(manifest.layers[0].annotations, { 'org.unikraft.kernel.initrd': '/unikraft/bin/initrd' });
    assert.deepEqual(manifest.annotations, {
      'org.opencontainers.image.created': '2023-11-14T22:13:20Z',
      'org.opencontainers.image.ref.name': 'latest',
      'org.unikraft.image.name': 'hello',
    });
    const config = JSON.parse(await readFile(img.config.path, 'utf8'));
    assert.equal(config.architecture, 'x86_64');
    assert.equal(config.os, 'kraftcloud');
    assert.deepEqual(config.config.Cmd, ['/usr/bin/python3', '/src/server.py']);
    assert.equal(config.config.Entrypoint, undefined);
    assert.deepEqual(config.rootfs.diff_ids, [img.layers[0]!.digest.text]);

    // The initrd is a real EROFS image holding the tree, modes (setuid too) and links included.
    const mnt = join(dir, 'mnt');
    await mkdir(mnt);
    const mounted = spawnSync('mount', ['-t', 'erofs', '-o', 'loop,ro', img.initrd.path, mnt], { encoding: 'utf8' });
    assert.equal(mounted.status, 0, mounted.stderr);
    try {
      assert.equal(await readFile(join(mnt, 'src/server.py'), 'utf8'), 'print("hello")\n');
      assert.equal((await lstat(join(mnt, 'usr/bin/tool'))).mode & 0o7777, 0o4755);
      assert.equal((await lstat(join(mnt, 'usr/bin/tool'))).uid, 0);
      assert.equal(await readlink(join(mnt, 'bin')), 'usr/bin');
    } finally {
      spawnSync('umount', [mnt]);
    }
  });
});

test('packageImage is reproducible: same tree and epoch give the same manifest digest whatever the mtimes', async () => {
  await withTmp(async (dir) => {
    const root = join(dir, 'rootfs');
    await makeRootfs(root);
    const run = mergeRunConfig({ dockerfile: { cmd: ['/bin/x'], env: ['B=2', 'A=1'], labels: { z: '1', a: '2' } } });
    const first = await packageImage({ rootfsDir: root, format: 'erofs', epoch: 0, name: 'r', run, blobs: new BlobDir(join(dir, 'b1')) });
    await utimes(join(root, 'src/server.py'), new Date(), new Date());
    const second = await packageImage({ rootfsDir: root, format: 'erofs', epoch: 0, name: 'r', run, blobs: new BlobDir(join(dir, 'b2')) });
    assert.equal(first.manifest.digest.text, second.manifest.digest.text);
    const config = await readFile(first.config.path, 'utf8');
    assert.ok(config.indexOf('"a":"2"') < config.indexOf('"z":"1"'), 'labels sorted');
    assert.ok(config.indexOf('"B=2"') < config.indexOf('"A=1"'), 'env keeps its order');
    const third = await packageImage({ rootfsDir: root, format: 'erofs', epoch: 5, name: 'r', run, blobs: new BlobDir(join(dir, 'b3')) });
    assert.notEqual(first.manifest.digest.text, third.manifest.digest.text, 'the epoch reaches the digest');
  });
});

test('a runtime kernel layer goes first, kept byte for byte, with the kernel annotation', async () => {
  await withTmp(async (dir) => {
    const root = join(dir, 'rootfs');
    await makeRootfs(root);
    const blobs = new BlobDir(join(dir, 'blobs'));
    await writeFile(join(dir, 'kernel'), Buffer.alloc(3000, 7));
    const kernelLayer = await writeSingleFileLayer(join(dir, 'kernel'), KERNEL_PATH, blobs);
    const img = await packageImage({ rootfsDir: root, format: 'erofs', epoch: 0, name: 'k', run: mergeRunConfig({}), kernelLayer, blobs });
    const manifest = JSON.parse(await readFile(img.manifest.path, 'utf8'));
    assert.equal(manifest.layers.length, 2);
    assert.equal(manifest.layers[0].digest, kernelLayer.digest.text);
    assert.deepEqual(manifest.layers[0].annotations, { 'org.unikraft.kernel.image': '/unikraft/bin/kernel' });
    const config = JSON.parse(await readFile(img.config.path, 'utf8'));
    assert.deepEqual(config.rootfs.diff_ids, [kernelLayer.digest.text, img.layers[1]!.digest.text]);
  });
});

test('mergeRunConfig: command precedence, env order, labels replaced, entrypoint folded', () => {
  const dockerfile = { entrypoint: ['/e'], cmd: ['c'], env: ['PATH=/bin', 'A=df'], labels: { d: '1' } };
  assert.deepEqual(mergeRunConfig({ dockerfile }).cmd, ['/e', 'c']);
  assert.deepEqual(mergeRunConfig({ dockerfile, runtime: { cmd: ['/rt'] } }).cmd, ['/rt']);
  assert.deepEqual(mergeRunConfig({ dockerfile, runtime: { cmd: ['/rt'] }, kraftfile: { cmd: ['/kf'] } }).cmd, ['/kf']);
  assert.deepEqual(mergeRunConfig({ dockerfile, kraftfile: { cmd: ['/kf'] }, cliArgs: ['/cli'] }).cmd, ['/cli']);
  const merged = mergeRunConfig({ dockerfile, kraftfile: { env: ['A=kf', 'K=1'], labels: { k: '2' } } });
  assert.deepEqual(merged.env, ['A=kf', 'K=1', 'PATH=/bin']);
  assert.deepEqual(merged.labels, { k: '2' });
  assert.deepEqual(mergeRunConfig({ dockerfile }).labels, { d: '1' });
});
