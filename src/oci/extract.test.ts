import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { MediaType } from './mediatypes.js';
import { createTarStream, tarDirectory, type TarEntry } from './tar.js';
import { ExtractError, applyLayers, detectCompression, extractLayer, extractTar, resolveInRoot } from './extract.js';

async function temp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-extract-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function bytesOf(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function entries(list: TarEntry[]): Readable {
  return createTarStream(list);
}

const file = (name: string, text: string, extra: Partial<TarEntry> = {}): TarEntry =>
  ({ type: 'file', name, size: Buffer.byteLength(text), source: Buffer.from(text), ...extra }) as TarEntry;

test('a tree survives tar + extract: modes, owners, mtimes, hardlinks, symlinks', async (t) => {
  const base = await temp(t);
  const src = join(base, 'src');
  await mkdir(join(src, 'usr/bin'), { recursive: true });
  await writeFile(join(src, 'usr/bin/app'), 'binary');
  await chown(join(src, 'usr/bin/app'), 1234, 5678);
  await chmod(join(src, 'usr/bin/app'), 0o4755);
  await link(join(src, 'usr/bin/app'), join(src, 'usr/bin/app2'));
  await symlink('usr/bin', join(src, 'bin'));
  await mkdir(join(src, 'tmp'));
  await chmod(join(src, 'tmp'), 0o1777);
  for (const p of ['usr/bin/app', 'usr/bin', 'usr', 'tmp']) await utimes(join(src, p), 1_000_000, 1_000_000);

  const dst = join(base, 'dst');
  const result = await extractTar(dst, tarDirectory(src));
  assert.equal(result.entries, 6);
  const app = await lstat(join(dst, 'usr/bin/app'));
  assert.equal(app.mode & 0o7777, 0o4755);
  assert.equal(app.uid, 1234);
  assert.equal(app.gid, 5678);
  assert.equal(app.mtimeMs, 1_000_000_000);
  assert.equal((await lstat(join(dst, 'usr/bin/app2'))).ino, app.ino);
  assert.equal(await readlink(join(dst, 'bin')), 'usr/bin');
  const tmp = await lstat(join(dst, 'tmp'));
  assert.equal(tmp.mode & 0o7777, 0o1777);
  assert.equal(tmp.mtimeMs, 1_000_000_000, 'directory mtimes are set after their contents');
  assert.equal((await lstat(join(dst, 'usr/bin'))).mtimeMs, 1_000_000_000);
});

test('gzip and zstd layers are detected by magic bytes or told by media type', async (t) => {
  const base = await temp(t);
  const tar = await bytesOf(entries([file('hello.txt', 'hi there\n')]));
  const gz = await bytesOf(Readable.from([tar]).pipe(createGzip()));
  const zst = execFileSync('zstd', ['-q', '-c'], { input: tar });
  assert.equal(detectCompression(gz), 'gzip');
  assert.equal(detectCompression(zst), 'zstd');
  assert.equal(detectCompression(tar), 'none');
  for (const [name, data, mediaType] of [
    ['plain', tar, MediaType.OciLayerTar],
    ['gzip', gz, MediaType.OciLayerGzip],
    ['zstd', zst, MediaType.OciLayerZstd],
  ] as const) {
    const auto = join(base, `${name}-auto`);
    await extractTar(auto, Readable.from([data]));
    assert.equal(await readFile(join(auto, 'hello.txt'), 'utf8'), 'hi there\n', name);
    // Small chunks (1 byte at first) must not confuse detection.
    const slow = join(base, `${name}-slow`);
    await extractTar(slow, Readable.from([data.subarray(0, 1), data.subarray(1, 3), data.subarray(3)]), { mediaType });
    assert.equal(await readFile(join(slow, 'hello.txt'), 'utf8'), 'hi there\n', name);
  }
  await assert.rejects(extractTar(join(base, 'x'), Readable.from([tar]), { mediaType: 'text/plain' }), ExtractError);
  await assert.rejects(extractTar(join(base, 'y'), Readable.from([gz]), { compression: 'zstd' }));
});

test('layer mode applies whiteouts and opaque directories, never writing .wh. files', async (t) => {
  const root = join(await temp(t), 'rootfs');
  const lower = entries([
    { type: 'directory', name: 'a' },
    file('a/x', 'x'),
    file('a/y', 'y'),
    { type: 'directory', name: 'b' },
    file('b/z', 'z'),
    { type: 'directory', name: 'c' },
    file('c/old1', '1'),
    { type: 'directory', name: 'c/old-dir' },
    file('c/old-dir/deep', 'd'),
    file('keep', 'k'),
  ]);
  const upper = entries([
    file('a/.wh.x', ''),
    file('.wh.b', ''),
    file('c/new', 'n'),
    file('c/.wh..wh..opq', ''),
    file('d/fresh', 'f'),
    file('d/.wh.fresh', ''),
    file('a/.wh..wh.plnk', ''),
  ]);
  await applyLayers(root, [{ open: () => lower }, { open: () => upper, mediaType: MediaType.OciLayerTar }]);
  assert.deepEqual((await readdir(root)).sort(), ['a', 'c', 'd', 'keep']);
  assert.deepEqual(await readdir(join(root, 'a')), ['y']);
  assert.deepEqual(await readdir(join(root, 'c')), ['new'], 'opaque dir keeps only this layer');
  assert.deepEqual(await readdir(join(root, 'd')), ['fresh'], 'a whiteout does not hide the same layer');

  const plain = join(root, '..', 'plain');
  await extractTar(plain, entries([file('a/.wh.x', 'w')]));
  assert.equal(await readFile(join(plain, 'a/.wh.x'), 'utf8'), 'w', 'plain mode writes a tar as it is');
});

test('later entries replace earlier ones of another type', async (t) => {
  const root = join(await temp(t), 'r');
  await extractLayer(root, entries([
    { type: 'directory', name: 'p' },
    file('p/inner', 'i'),
    file('f', 'file'),
    { type: 'symlink', name: 's', target: 'f' },
  ]));
  await extractLayer(root, entries([
    file('p', 'now a file'),
    { type: 'directory', name: 'f' },
    file('s', 'replaces the link, not its target'),
  ]));
  assert.equal(await readFile(join(root, 'p'), 'utf8'), 'now a file');
  assert.ok((await lstat(join(root, 'f'))).isDirectory());
  assert.ok((await lstat(join(root, 's'))).isFile());
});

test('resolveInRoot follows links as if the root were /', async (t) => {
  const root = join(await temp(t), 'r');
  await mkdir(join(root, 'usr/lib'), { recursive: true });
  await symlink('usr/lib', join(root, 'lib'));
  await symlink('/usr', join(root, 'abs'));
  await symlink('../../../../../..', join(root, 'up'));
  await symlink('loop2', join(root, 'loop1'));
  await symlink('loop1', join(root, 'loop2'));
  assert.equal(await resolveInRoot(root, '/lib/x.so'), join(root, 'usr/lib/x.so'));
  assert.equal(await resolveInRoot(root, 'abs/lib'), join(root, 'usr/lib'));
  assert.equal(await resolveInRoot(root, 'up/etc/passwd'), join(root, 'etc/passwd'));
  assert.equal(await resolveInRoot(root, '../../../etc'), join(root, 'etc'));
  assert.equal(await resolveInRoot(root, 'lib', { followFinal: false }), join(root, 'lib'));
  assert.equal(await resolveInRoot(root, 'missing/../lib/a'), join(root, 'usr/lib/a'));
  await assert.rejects(resolveInRoot(root, 'loop1/x'), /too many levels/);
});

test('device nodes are made only when allowed (as root); FIFOs always', async (t) => {
  const root = join(await temp(t), 'r');
  const dev: TarEntry[] = [
    { type: 'char', name: 'dev/null', devMajor: 1, devMinor: 3, mode: 0o666 },
    { type: 'fifo', name: 'run/pipe', mode: 0o600 },
  ];
  const warnings: string[] = [];
  const r1 = await extractTar(root, createTarStream(dev), { onWarning: (m) => warnings.push(m) });
  assert.equal(r1.skipped, 1);
  assert.match(warnings[0], /skipping device node "dev\/null"/);
  await assert.rejects(lstat(join(root, 'dev/null')), { code: 'ENOENT' });
  assert.ok((await lstat(join(root, 'run/pipe'))).isFIFO());
  if (process.getuid?.() !== 0) {
    t.skip('creating device nodes needs root');
    return;
  }
  await extractTar(root, createTarStream(dev), { allowDevices: true });
  const st = await lstat(join(root, 'dev/null'));
  assert.ok(st.isCharacterDevice());
  assert.equal(st.mode & 0o777, 0o666);
});
