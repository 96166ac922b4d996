import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobDir } from './blobs.js';
import { importRootfs } from './import.js';
import { writeLayout } from './output.js';

test('importRootfs makes a reproducible plain OCI image (linux/amd64) from a directory or a tarball', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-import-'));
  try {
    const root = join(dir, 'root');
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'usr/bin/tool'), 'x');
    await chmod(join(root, 'usr/bin/tool'), 0o4755);
    await symlink('usr/bin', join(root, 'bin'));
    const opts = { epoch: 0, compression: 'gzip' as const, env: ['PATH=/usr/bin'], cmd: ['tool'], labels: { b: '2', a: '1' } };
    const one = await importRootfs(root, { ...opts, blobs: new BlobDir(join(dir, 'b1')) });
    await utimes(join(root, 'usr/bin/tool'), new Date(), new Date());
    const two = await importRootfs(root, { ...opts, blobs: new BlobDir(join(dir, 'b2')) });
    assert.equal(one.manifest.digest.text, two.manifest.digest.text, 'mtimes clamped: same digest');
    const config = JSON.parse(await readFile(one.blobs[0]!.path, 'utf8'));
    assert.equal(config.os, 'linux');
    assert.equal(config.architecture, 'amd64');
    assert.deepEqual(config.config.Cmd, ['tool']);
    assert.deepEqual(config.rootfs.diff_ids, [one.diffId]);
    assert.notEqual(one.diffId, one.layer.digest.text, 'gzip layer: diff_id is the uncompressed digest');
    assert.deepEqual(Object.keys(config.config.Labels), ['a', 'b']);

    // The layer holds the tree, setuid bit and link included (checked with GNU tar).
    const listing = execFileSync('tar', ['-tvzf', one.layer.path], { encoding: 'utf8' });
    assert.match(listing, /^-rwsr-xr-x .* usr\/bin\/tool$/m);
    assert.match(listing, /^lrwxrwxrwx .* bin -> usr\/bin$/m);

    // skopeo reads the layout we write.
    const layout = join(dir, 'layout');
    await writeLayout(layout, one, 'v1');
    const raw = JSON.parse(execFileSync('skopeo', ['inspect', '--raw', `oci:${layout}:v1`], { encoding: 'utf8' }));
    assert.equal(raw.layers[0].mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');

    // A tarball of the same tree imports to the same layer content.
    const tarball = join(dir, 'root.tar');
    execFileSync('tar', ['-C', root, '-cf', tarball, '.']);
    const three = await importRootfs(tarball, { ...opts, compression: 'none', blobs: new BlobDir(join(dir, 'b3')) });
    assert.equal(three.diffId, one.diffId);
    assert.equal(three.layer.digest.text, three.diffId, 'uncompressed layer: digest == diff_id');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
