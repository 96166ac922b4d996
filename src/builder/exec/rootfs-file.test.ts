// `unikraft build` with a Kraftfile rootfs given as a file: tarball, CPIO, EROFS.
// Each builds to an .oci.tar whose initrd (read back out of the archive) holds the
// tree; two builds from fresh caches give the same digest; hostile tarballs stay
// confined (a sentinel directory outside is untouched).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { createTarStream, type TarEntry } from '../../oci/index.js';
import { buildProject, type ProjectBuildResult } from './project.js';
import { unpackRootfsFile, RootfsFileError } from './rootfs-file.js';

async function withTemp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-rootfs-file-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A small app tree: a file, an executable, a symlink, an empty directory. */
async function makeTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'etc'), { recursive: true });
  await mkdir(join(dir, 'bin'));
  await mkdir(join(dir, 'empty'));
  await writeFile(join(dir, 'etc', 'hello.txt'), 'hello from a file rootfs\n');
  await writeFile(join(dir, 'bin', 'app'), '#!/bin/sh\necho app\n');
  await chmod(join(dir, 'bin', 'app'), 0o755);
  await symlink('etc/hello.txt', join(dir, 'link'));
}

async function project(dir: string, rootfs: string, format?: 'cpio' | 'erofs'): Promise<string> {
  const p = join(dir, 'project');
  await mkdir(p, { recursive: true });
  const spec = format ? `rootfs:\n  source: ${rootfs}\n  format: ${format}\n` : `rootfs: ${rootfs}\n`;
  await writeFile(join(p, 'Kraftfile'), `spec: v0.6\nname: fileapp\nunikraft: stable\ncmd: ["/bin/app"]\n${spec}`);
  return p;
}

let buildCount = 0;
async function build(dir: string, p: string): Promise<{ res: ProjectBuildResult; initrd: Buffer }> {
  const n = ++buildCount;
  const out = join(dir, `out-${n}.oci.tar`);
  const res = await buildProject({ dir: p, cwd: dir, output: out, cacheDir: join(dir, `cache-${n}`) });
  return { res, initrd: await initrdFromArchive(out, join(dir, `read-${n}`)) };
}

/** Reads the initrd back out of an .oci.tar: index → manifest → last layer → unikraft/bin/initrd. */
async function initrdFromArchive(archive: string, work: string): Promise<Buffer> {
  await mkdir(work, { recursive: true });
  execFileSync('tar', ['-xf', archive, '-C', work]);
  const blob = (d: string): string => join(work, 'blobs', ...d.split(':'));
  const index = JSON.parse(await readFile(join(work, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(await readFile(blob(index.manifests[0]!.digest), 'utf8')) as { layers: { digest: string }[] };
  const layer = blob(manifest.layers[manifest.layers.length - 1]!.digest);
  const layerDir = join(work, 'layer');
  await mkdir(layerDir);
  execFileSync('tar', ['-xf', layer, '-C', layerDir]);
  return readFile(join(layerDir, 'unikraft', 'bin', 'initrd'));
}

/** Unpacks an initrd (EROFS or CPIO) with the system tools into `dest`. */
async function unpackInitrd(initrd: Buffer, work: string, dest: string): Promise<void> {
  await mkdir(work, { recursive: true });
  const file = join(work, 'initrd.img');
  await writeFile(file, initrd);
  if (initrd.subarray(0, 6).toString('latin1') === '070701') {
    await mkdir(dest);
    execFileSync('cpio', ['-i', '-d', '--quiet', '-D', dest, '-F', file]);
  } else {
    assert.equal(initrd.readUInt32LE(1024), 0xe0f5e1e2, 'initrd is EROFS');
    execFileSync('fsck.erofs', [`--extract=${dest}`, file]);
  }
}

async function assertTree(root: string): Promise<void> {
  assert.equal(await readFile(join(root, 'etc', 'hello.txt'), 'utf8'), 'hello from a file rootfs\n');
  assert.equal(await readFile(join(root, 'bin', 'app'), 'utf8'), '#!/bin/sh\necho app\n');
  assert.equal(await readlink(join(root, 'link')), 'etc/hello.txt');
  assert.deepEqual(await readdir(join(root, 'empty')), []);
}

function cpioList(initrd: Buffer): string[] {
  return execFileSync('cpio', ['-t', '--quiet'], { input: initrd, encoding: 'utf8' })
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

test('a tar.gz rootfs builds; the initrd holds its tree; the digest is reproducible', async () => {
  await withTemp(async (dir) => {
    await makeTree(join(dir, 'tree'));
    await mkdir(join(dir, 'project'));
    execFileSync('tar', ['-czf', join(dir, 'project', 'rootfs.tar.gz'), '-C', join(dir, 'tree'), '.']);
    const p = await project(dir, './rootfs.tar.gz', 'cpio');
    const a = await build(dir, p);
    assert.equal(a.initrd.subarray(0, 6).toString('latin1'), '070701');
    const names = cpioList(a.initrd).map((n) => n.replace(/^\.\//, ''));
    for (const want of ['bin/app', 'etc/hello.txt', 'link', 'empty']) assert.ok(names.includes(want), `${want} in ${names.join(',')}`);
    await unpackInitrd(a.initrd, join(dir, 'u1'), join(dir, 'u1', 'root'));
    await assertTree(join(dir, 'u1', 'root'));
    const b = await build(dir, p);
    assert.equal(b.res.manifestDigest, a.res.manifestDigest);
    assert.ok(a.initrd.equals(b.initrd));
  });
});

test('a GNU cpio newc rootfs builds to an EROFS initrd holding its tree, reproducibly', async () => {
  await withTemp(async (dir) => {
    await makeTree(join(dir, 'tree'));
    await mkdir(join(dir, 'project'));
    const list = execFileSync('find', ['.', '-mindepth', '1'], { cwd: join(dir, 'tree'), encoding: 'utf8' });
    execFileSync('cpio', ['-o', '-H', 'newc', '--quiet', '-O', join(dir, 'project', 'rootfs.cpio')], { cwd: join(dir, 'tree'), input: list });
    const p = await project(dir, './rootfs.cpio');
    const a = await build(dir, p);
    await unpackInitrd(a.initrd, join(dir, 'u1'), join(dir, 'u1', 'root'));
    await assertTree(join(dir, 'u1', 'root'));
    const b = await build(dir, p);
    assert.equal(b.res.manifestDigest, a.res.manifestDigest);
    // Re-encoded as cpio on request.
    const c = await build(dir, await project(join(dir, 'again'), join(dir, 'project', 'rootfs.cpio'), 'cpio'));
    await unpackInitrd(c.initrd, join(dir, 'u2'), join(dir, 'u2', 'root'));
    await assertTree(join(dir, 'u2', 'root'));
  });
});

test('an EROFS rootfs is the initrd byte for byte; asked for cpio it is extracted and re-encoded', async () => {
  await withTemp(async (dir) => {
    await makeTree(join(dir, 'tree'));
    await mkdir(join(dir, 'project'));
    const image = join(dir, 'project', 'rootfs.erofs');
    execFileSync('mkfs.erofs', ['--quiet', image, join(dir, 'tree')]);
    const p = await project(dir, './rootfs.erofs');
    const a = await build(dir, p);
    assert.ok(a.initrd.equals(await readFile(image)), 'the EROFS image is used as it is');
    const b = await build(dir, p);
    assert.equal(b.res.manifestDigest, a.res.manifestDigest);
    const c = await build(dir, await project(join(dir, 'cpio'), image, 'cpio'));
    assert.equal(c.initrd.subarray(0, 6).toString('latin1'), '070701');
    await unpackInitrd(c.initrd, join(dir, 'u'), join(dir, 'u', 'root'));
    await assertTree(join(dir, 'u', 'root'));
  });
});

test('a file named .erofs without the EROFS magic is refused with a clear error', async () => {
  await withTemp(async (dir) => {
    await mkdir(join(dir, 'project'));
    await writeFile(join(dir, 'project', 'rootfs.erofs'), Buffer.alloc(4096, 7));
    const p = await project(dir, './rootfs.erofs');
    await assert.rejects(build(dir, p), /not an EROFS image/);
  });
});

async function hostileTar(file: string, entries: { name: string; type: 'file' | 'symlink' | 'directory'; body?: string; linkname?: string }[]): Promise<void> {
  const tarEntries = entries.map((e): TarEntry => {
    const common = { name: e.name, mode: e.type === 'file' ? 0o644 : 0o755, mtime: 0 };
    if (e.type === 'file') {
      const body = Buffer.from(e.body ?? '');
      return { ...common, type: 'file', size: body.length, source: body };
    }
    if (e.type === 'symlink') return { ...common, type: 'symlink', target: e.linkname ?? '' };
    return { ...common, type: 'directory' };
  });
  await pipeline(createTarStream(tarEntries), createGzip(), createWriteStream(file));
}

test('hostile tarball rootfs: ../ climbs are refused, writes through a symlink stay inside; the sentinel is untouched', async () => {
  await withTemp(async (dir) => {
    const outside = join(dir, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'sentinel'), 'untouched');
    await mkdir(join(dir, 'project'));

    await hostileTar(join(dir, 'project', 'climb.tar.gz'), [{ name: '../x', type: 'file', body: 'pwned' }, { name: `../outside/sentinel`, type: 'file', body: 'pwned' }]);
    await assert.rejects(build(dir, await project(dir, './climb.tar.gz')));

    await hostileTar(join(dir, 'project', 'through.tar.gz'), [
      { name: 'esc', type: 'symlink', linkname: outside },
      { name: 'esc/sentinel', type: 'file', body: 'pwned' },
      { name: 'esc/new', type: 'file', body: 'pwned' },
    ]);
    const dest = join(dir, 'unpacked');
    await unpackRootfsFile('tarball', join(dir, 'project', 'through.tar.gz'), dest).catch(() => undefined);
    await build(dir, await project(join(dir, 'p2'), join(dir, 'project', 'through.tar.gz'), 'cpio')).catch(() => undefined);

    assert.equal(await readFile(join(outside, 'sentinel'), 'utf8'), 'untouched');
    assert.deepEqual(await readdir(outside), ['sentinel']);
    assert.deepEqual(await readdir(dir).then((l) => l.filter((n) => n === 'x')), []);
  });
});

test('bzip2 tarballs get a clear error; the destination is left absent', async () => {
  await withTemp(async (dir) => {
    const file = join(dir, 'r.tar.bz2');
    await writeFile(file, Buffer.concat([Buffer.from('BZh9'), Buffer.alloc(64)]));
    await assert.rejects(unpackRootfsFile('tarball', file, join(dir, 'dest')), (e: unknown) => e instanceof RootfsFileError && /bzip2 and xz/.test(e.message));
    await assert.rejects(readdir(join(dir, 'dest')));
  });
});

test('the same file rootfs gives the same app key whatever its path or mtime', async () => {
  await withTemp(async (dir) => {
    await makeTree(join(dir, 'tree'));
    await mkdir(join(dir, 'project'));
    execFileSync('tar', ['-cf', join(dir, 'project', 'rootfs.tar'), '-C', join(dir, 'tree'), '.']);
    const a = await build(dir, await project(dir, './rootfs.tar'));
    const copy = join(dir, 'elsewhere', 'r.tar');
    await mkdir(join(dir, 'elsewhere'));
    await writeFile(copy, await readFile(join(dir, 'project', 'rootfs.tar')));
    const b = await build(dir, await project(join(dir, 'q'), copy));
    assert.equal(createHash('sha256').update(a.initrd).digest('hex'), createHash('sha256').update(b.initrd).digest('hex'));
    assert.equal(a.res.manifestDigest, b.res.manifestDigest);
  });
});

test('a directory rootfs is cached by its content: an unchanged rebuild packages nothing, a change re-packages', async () => {
  await withTemp(async (dir) => {
    const p = await project(dir, './tree', 'cpio');
    await makeTree(join(p, 'tree'));
    const cacheDir = join(dir, 'cache-dir-rootfs');
    const once = async (): Promise<ProjectBuildResult> =>
      buildProject({ dir: p, cwd: dir, output: join(dir, `dir-${++buildCount}.oci.tar`), cacheDir });
    const first = await once();
    assert.equal(first.packagingCached, false);
    const second = await once();
    assert.equal(second.packagingCached, true, 'nothing changed: packaging comes from the cache');
    assert.equal(second.manifestDigest, first.manifestDigest);
    await writeFile(join(p, 'tree', 'etc', 'hello.txt'), 'changed\n');
    const third = await once();
    assert.equal(third.packagingCached, false, 'a changed file re-packages');
    assert.notEqual(third.manifestDigest, first.manifestDigest);
  });
});
