import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { digestOf } from './digest.js';
import { MediaType } from './mediatypes.js';
import { tarDirectory } from './tar.js';
import { applyLayers } from './extract.js';
import {
  LayoutError,
  REF_NAME_ANNOTATION,
  addBlob,
  addManifestToIndex,
  blobPath,
  hasBlob,
  isValidLayoutRefName,
  layoutTarStream,
  openBlob,
  parseLayoutIndex,
  readBlob,
  readIndex,
  readLayoutTar,
  resolveInLayout,
  verifyLayout,
  writeLayout,
} from './layout.js';

async function temp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-layout-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function bytesOf(s: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

/** A one-layer image (layer = a tar of a small tree), written with writeLayout. */
async function makeImage(base: string, layout: string, refName: string): Promise<{ manifestDigest: string }> {
  const tree = join(base, 'tree');
  await mkdir(join(tree, 'etc'), { recursive: true });
  await writeFile(join(tree, 'etc/greeting'), 'hello from ukc\n');
  const layer = await bytesOf(tarDirectory(tree, { sourceDateEpoch: 0, owner: { uid: 0, gid: 0 } }));
  const layerDigest = digestOf(layer).text;
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: { Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: [layerDigest] },
    }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: digestOf(config).text, size: config.length },
      layers: [{ mediaType: MediaType.OciLayerTar, digest: layerDigest, size: layer.length }],
    }),
  );
  const manifestDigest = digestOf(manifest).text;
  await writeLayout(layout, {
    blobs: [layer, config, { open: () => Readable.from([manifest]), digest: manifestDigest, size: manifest.length }],
    manifests: [{ descriptor: { mediaType: MediaType.OciManifest, digest: manifestDigest, size: manifest.length }, refName }],
  });
  return { manifestDigest };
}

test('a layout we write is read by umoci and skopeo', async (t) => {
  const base = await temp(t);
  const layout = join(base, 'layout');
  const { manifestDigest } = await makeImage(base, layout, 'v1');
  assert.equal(JSON.parse(await readFile(join(layout, 'oci-layout'), 'utf8')).imageLayoutVersion, '1.0.0');
  const desc = await resolveInLayout(layout, 'v1');
  assert.equal(desc.digest, manifestDigest);
  assert.equal((await verifyLayout(layout)).blobs, 3);

  const stat = execFileSync('umoci', ['stat', '--image', `${layout}:v1`], { encoding: 'utf8' });
  assert.match(stat, /LAYER/);
  const bundle = join(base, 'bundle');
  execFileSync('umoci', ['unpack', '--image', `${layout}:v1`, bundle], { stdio: 'pipe' });
  assert.equal(await readFile(join(bundle, 'rootfs/etc/greeting'), 'utf8'), 'hello from ukc\n');

  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${layout}:v1`], { encoding: 'utf8' })) as {
    Digest: string;
    Layers: string[];
  };
  assert.equal(inspect.Digest, manifestDigest);
  assert.equal(inspect.Layers.length, 1);
});

test('a layout umoci made is read: index, ref names, manifest, gzip layers', async (t) => {
  const base = await temp(t);
  const layout = join(base, 'umoci-layout');
  const run = (...args: string[]) => execFileSync('umoci', args, { stdio: 'pipe' });
  run('init', '--layout', layout);
  run('new', '--image', `${layout}:base`);
  const bundle = join(base, 'bundle');
  run('unpack', '--image', `${layout}:base`, bundle);
  await writeFile(join(bundle, 'rootfs/made-by-umoci'), 'yes');
  run('repack', '--image', `${layout}:base`, bundle);

  const index = await readIndex(layout);
  assert.ok(index.manifests.length >= 1);
  const desc = await resolveInLayout(layout, 'base');
  assert.equal(desc.mediaType, MediaType.OciManifest);
  const manifest = JSON.parse((await readBlob(layout, desc.digest)).toString()) as {
    layers: Array<{ mediaType: string; digest: string }>;
  };
  assert.ok(manifest.layers.length >= 1);
  const root = join(base, 'rootfs');
  await applyLayers(root, manifest.layers.map((l) => ({ open: () => openBlob(layout, l.digest), mediaType: l.mediaType })));
  assert.equal(await readFile(join(root, 'made-by-umoci'), 'utf8'), 'yes');
  await verifyLayout(layout);
});

test('the .oci.tar form is deterministic, readable back and by skopeo oci-archive', async (t) => {
  const base = await temp(t);
  const layout = join(base, 'layout');
  const { manifestDigest } = await makeImage(base, layout, 'v1');
  const hash = async () => createHash('sha256').update(await bytesOf(layoutTarStream(layout))).digest('hex');
  assert.equal(await hash(), await hash());
  // A second layout with the same content written later gives the same archive.
  await mkdir(join(base, 'again'));
  await makeImage(join(base, 'again'), join(base, 'again/layout'), 'v1');
  assert.equal(
    createHash('sha256').update(await bytesOf(layoutTarStream(join(base, 'again/layout')))).digest('hex'),
    await hash(),
  );

  const archive = join(base, 'image.oci.tar');
  await pipeline(layoutTarStream(layout), createWriteStream(archive));
  const listing = execFileSync('tar', ['-tf', archive], { encoding: 'utf8' }).trim().split('\n');
  assert.deepEqual(listing.slice(0, 2), ['blobs/', 'blobs/sha256/']);
  assert.deepEqual(listing.slice(-2), ['index.json', 'oci-layout']);
  const inspect = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${archive}:v1`], { encoding: 'utf8' })) as { Digest: string };
  assert.equal(inspect.Digest, manifestDigest);

  const back = join(base, 'back');
  const index = await readLayoutTar(createReadStream(archive), back);
  assert.equal(index.manifests[0].annotations?.[REF_NAME_ANNOTATION], 'v1');
  assert.equal((await resolveInLayout(back, 'v1')).digest, manifestDigest);
});

test('a layout tar with a tampered blob is refused and its temp dir removed', async (t) => {
  const base = await temp(t);
  const layout = join(base, 'layout');
  await makeImage(base, layout, 'v1');
  const desc = await resolveInLayout(layout, 'v1');
  await writeFile(blobPath(layout, desc.digest), '{"tampered":true}');
  await assert.rejects(verifyLayout(layout), /does not match its digest/);
  const dest = join(base, 'dest');
  await assert.rejects(readLayoutTar(layoutTarStream(layout), dest), LayoutError);
  await assert.rejects(readdir(dest), { code: 'ENOENT' });
});

test('blobs are stored only when their digest and size match', async (t) => {
  const dir = await temp(t);
  const data = Buffer.from('some blob');
  const good = await addBlob(dir, Readable.from([data]), { digest: digestOf(data).text, size: data.length });
  assert.equal(good.digest.text, digestOf(data).text);
  assert.ok(await hasBlob(dir, good.digest));
  const wrong = digestOf('other').text;
  await assert.rejects(addBlob(dir, Readable.from([Buffer.from('tampered')]), { digest: wrong }), /blob mismatch/);
  await assert.rejects(addBlob(dir, Buffer.from('long body'), { size: 3 }), /larger than the expected 3 bytes/);
  assert.equal(await hasBlob(dir, wrong), false);
  assert.deepEqual(await readdir(join(dir, 'blobs/sha256')), [good.digest.hex], 'no temp files left');
});

test('hostile digests and index documents are refused before any path is built (row 4)', async (t) => {
  const dir = await temp(t);
  assert.throws(() => blobPath(dir, 'sha256:../../etc/passwd'), /invalid sha256 digest/);
  assert.throws(() => blobPath(dir, `sha256:${'A'.repeat(64)}`));
  const bad = [
    '{',
    '[]',
    '{"schemaVersion":1,"manifests":[]}',
    '{"schemaVersion":2}',
    '{"schemaVersion":2,"manifests":[{"mediaType":"x/y","digest":"sha256:../../x","size":1}]}',
    `{"schemaVersion":2,"manifests":[{"mediaType":"x/y","digest":"sha256:${'a'.repeat(64)}","size":-1}]}`,
    `{"schemaVersion":2,"manifests":[{"mediaType":"x","digest":"sha256:${'a'.repeat(64)}","size":1}]}`,
    `{"schemaVersion":2,"manifests":[{"mediaType":"x/y","digest":"sha256:${'a'.repeat(64)}","size":1,"annotations":{"a":1}}]}`,
    '{"schemaVersion":2,"manifests":[],"layers":[]}',
  ];
  for (const text of bad) assert.throws(() => parseLayoutIndex(text), LayoutError, text);
  await writeLayout(dir, { blobs: [], manifests: [] });
  await writeFile(join(dir, 'index.json'), bad[4]);
  await assert.rejects(readIndex(dir), /manifests\[0\]\.digest/);
  await assert.rejects(resolveInLayout(dir, 'v1'), LayoutError);
});

test('tagging replaces the previous holder of a ref name; ref names follow the grammar', async (t) => {
  const dir = await temp(t);
  const a = Buffer.from('{"a":1}');
  const b = Buffer.from('{"b":2}');
  await writeLayout(dir, {
    blobs: [a, b],
    manifests: [{ descriptor: { mediaType: MediaType.OciManifest, digest: digestOf(a).text, size: a.length }, refName: 'latest' }],
  });
  await addManifestToIndex(dir, { mediaType: MediaType.OciManifest, digest: digestOf(b).text, size: b.length }, 'latest');
  const index = await readIndex(dir);
  assert.equal(index.manifests.length, 1);
  assert.equal((await resolveInLayout(dir, 'latest')).digest, digestOf(b).text);
  await assert.rejects(resolveInLayout(dir, 'missing'), /no manifest named "missing"/);
  for (const ok of ['latest', 'v1.0', 'alice/app:1', 'a--b', 'x@y+z']) assert.ok(isValidLayoutRefName(ok), ok);
  for (const no of ['', '/a', 'a/', 'a..b', '-a', 'a b', '../x']) assert.ok(!isValidLayoutRefName(no), no);
  await assert.rejects(
    addManifestToIndex(dir, { mediaType: MediaType.OciManifest, digest: digestOf(b).text, size: b.length }, '../x'),
    /invalid layout reference name/,
  );
});
