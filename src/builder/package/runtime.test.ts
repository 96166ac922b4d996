import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile, lstat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ExtractPathError } from '../../oci/extract.js';
import type { PulledImage } from '../exec/images.js';
import { BlobDir } from './blobs.js';
import { ANNOTATION_INITRD } from './config.js';
import { unpackInitrd, unpackRuntimeRootfs } from './runtime.js';

// A tiny explicit newc writer, so hostile archives can say anything.
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const hex = (v: number): string => v.toString(16).toUpperCase().padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);
interface RawEntry {
  name: string;
  mode: number;
  data?: string;
}
function rawEntry(e: RawEntry, ino: number): Buffer {
  const data = Buffer.from(e.data ?? '');
  const name = Buffer.from(`${e.name}\0`);
  const fields = [ino, e.mode, 0, 0, 1, 1_600_000_000, data.length, 0, 0, 0, 0, name.length, 0].map(hex);
  const head = Buffer.concat([Buffer.from('070701' + fields.join(''), 'latin1'), name]);
  return Buffer.concat([head, pad4(head.length), data, pad4(data.length)]);
}
const cpio = (...entries: RawEntry[]): Buffer =>
  Buffer.concat([...entries.map((e, i) => rawEntry(e, i + 1)), rawEntry({ name: 'TRAILER!!!', mode: 0 }, 0)]);
const file = (name: string, data: string): RawEntry => ({ name, mode: S_IFREG | 0o644, data });
const slink = (name: string, target: string): RawEntry => ({ name, mode: S_IFLNK | 0o777, data: target });
const dir = (name: string): RawEntry => ({ name, mode: S_IFDIR | 0o755 });

/** `<base>/blobs`, `<base>/rootfs` to unpack into, and `<base>/victim/` holding a sentinel beside them. */
async function setup(t: { after: (fn: () => Promise<void>) => void }): Promise<{ base: string; rootfs: string; blobs: BlobDir }> {
  const base = await mkdtemp(join(tmpdir(), 'ukc-runtime-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  await mkdir(join(base, 'victim'));
  await writeFile(join(base, 'victim', 'sentinel'), 'original');
  await mkdir(join(base, 'blobs'));
  return { base, rootfs: join(base, 'rootfs'), blobs: new BlobDir(join(base, 'blobs')) };
}

/** A Unikraft-layout runtime image whose single layer holds `initrd` as its initrd. */
async function runtimeImage(base: string, initrd: Buffer): Promise<PulledImage> {
  const layerDir = join(base, 'layer');
  await mkdir(layerDir, { recursive: true });
  await writeFile(join(layerDir, 'initrd'), initrd);
  const tarPath = join(base, 'layer.tar');
  execFileSync('tar', ['-cf', tarPath, '-C', layerDir, 'initrd']);
  await rm(layerDir, { recursive: true });
  const bytes = await readFile(tarPath);
  const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const manifest = { schemaVersion: 2, layers: [{ digest, size: bytes.length, mediaType: 'application/vnd.oci.image.layer.v1.tar', annotations: { [ANNOTATION_INITRD]: 'true' } }] };
  return {
    ref: {} as PulledImage['ref'],
    manifestDigest: 'sha256:' + '0'.repeat(64),
    manifest: Buffer.from(JSON.stringify(manifest)),
    config: {},
    layers: [{ path: tarPath, mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: bytes.length }],
  };
}

test('a runtime initrd CPIO writing through its own symlink stays inside the rootfs', async (t) => {
  const { base, rootfs, blobs } = await setup(t);
  const victim = join(base, 'victim');
  const image = await runtimeImage(base, cpio(slink('x', victim), file('x/pwned', 'pwned'), slink('up', '../victim'), file('up/sentinel', 'pwned')));
  await unpackRuntimeRootfs(image, rootfs, blobs);
  assert.equal(await readFile(join(victim, 'sentinel'), 'utf8'), 'original', 'the sentinel outside is untouched');
  assert.deepEqual(await readdir(victim), ['sentinel'], 'nothing written in the victim dir');
  // The confined writer resolves the links inside the rootfs.
  assert.equal(await readFile(join(rootfs, victim, 'pwned'), 'utf8'), 'pwned');
  assert.equal(await readlink(join(rootfs, 'x')), victim);
});

test('a runtime initrd CPIO with ../ names is refused and writes nothing outside', async (t) => {
  const { base, rootfs, blobs } = await setup(t);
  const image = await runtimeImage(base, cpio(dir('a'), file('a/../../victim/sentinel', 'pwned')));
  await assert.rejects(unpackRuntimeRootfs(image, rootfs, blobs), (e) => e instanceof ExtractPathError);
  assert.equal(await readFile(join(base, 'victim', 'sentinel'), 'utf8'), 'original');
  assert.deepEqual(await readdir(join(base, 'victim')), ['sentinel']);
});

test('a runtime initrd CPIO over the entry limit is refused', async (t) => {
  const { base, rootfs } = await setup(t);
  const initrd = join(base, 'initrd.cpio');
  await writeFile(initrd, cpio(file('a', '1'), file('b', '2'), file('c', '3')));
  await assert.rejects(unpackInitrd(initrd, rootfs, { maxEntries: 2 }), /maxEntries|entries/);
});

test('an EROFS runtime initrd unpacks, with fsck.erofs sandboxed to the rootfs', async (t) => {
  const { base, rootfs } = await setup(t);
  const src = join(base, 'src');
  await mkdir(join(src, 'etc'), { recursive: true });
  await writeFile(join(src, 'etc', 'hello'), 'world');
  // A link out of the tree: extraction keeps it as a link and writes nothing through it.
  await symlink(join(base, 'victim'), join(src, 'out'));
  const img = join(base, 'initrd.erofs');
  execFileSync('mkfs.erofs', ['--quiet', img, src]);
  await unpackInitrd(img, rootfs);
  assert.equal(await readFile(join(rootfs, 'etc', 'hello'), 'utf8'), 'world');
  assert.ok((await lstat(join(rootfs, 'out'))).isSymbolicLink());
  assert.deepEqual(await readdir(join(base, 'victim')), ['sentinel']);
});
