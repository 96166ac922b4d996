// Fault 6 of issue 13: a build that fails leaves nothing in the build cache. The case from the
// report: an ADD of a gzip that inflates to far more than it weighs. Here the first ADD (64 MiB
// from ~64 KiB) fits the archive limit and its snapshot is taken; the second one is over the
// limit and the build fails: neither snapshot nor any blob may stay, attempt after attempt.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { encodeTarHeader } from '../../oci/index.js';
import { gzipSync } from 'node:zlib';
import { buildProject } from './project.js';
import { directoryBytes } from '../../metrics/index.js';

/** One ustar header for a regular file of `size` bytes (oci's deterministic writer). */
function tarHeader(name: string, size: number): Buffer {
  return encodeTarHeader({ type: 'file', name, size, source: new Uint8Array(0), mode: 0o644 });
}

/** A gzip'd tar of one file of `mib` MiB of zeros (about a thousandth of that on disk). */
function gzipBomb(name: string, mib: number): Buffer {
  const size = mib * 1024 * 1024;
  return gzipSync(Buffer.concat([tarHeader(name, size), Buffer.alloc(size), Buffer.alloc(1024)]));
}

async function entries(dir: string): Promise<string[]> {
  return readdir(dir).catch(() => []);
}

test('a build failing on a decompression bomb leaves nothing in the build cache, however often it is tried', async () => {
  const work = await mkdtemp(join(tmpdir(), 'ukc-failed-build-'));
  try {
    const dir = join(work, 'proj');
    await mkdir(dir);
    await writeFile(join(dir, 'fits.tar.gz'), gzipBomb('fits', 64));
    await writeFile(join(dir, 'bomb.tar.gz'), gzipBomb('bomb', 160));
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nADD fits.tar.gz /\nADD bomb.tar.gz /more/\n');
    const cacheDir = join(work, 'cache');
    for (let attempt = 1; attempt <= 2; attempt++) {
      const lines: string[] = [];
      await assert.rejects(
        buildProject({ dir, cwd: work, output: join(work, 'out'), cacheDir, archiveLimits: { maxBytes: 128 * 1024 * 1024 }, log: (l) => lines.push(l) }),
        /ADD bomb\.tar\.gz .*expands past the limit/,
      );
      assert.match(lines.join('\n'), /build failed: removed [1-9]\d* cache states/);
      assert.deepEqual(await entries(join(cacheDir, 'states')), [], `attempt ${attempt}: no state (snapshot) stays`);
      assert.deepEqual(await entries(join(cacheDir, 'blobs', 'sha256')), [], `attempt ${attempt}: no blob stays`);
      const left = await directoryBytes(cacheDir);
      assert.ok(left < 1024 * 1024, `attempt ${attempt}: ${left} bytes left in the cache`);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});

test('a successful build keeps its cache (the next one is all CACHED)', async () => {
  const work = await mkdtemp(join(tmpdir(), 'ukc-ok-build-'));
  try {
    const dir = join(work, 'proj');
    await mkdir(dir);
    await writeFile(join(dir, 'fits.tar.gz'), gzipBomb('fits', 1));
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nADD fits.tar.gz /\n');
    const cacheDir = join(work, 'cache');
    const build = () => buildProject({ dir, cwd: work, output: join(work, 'out'), cacheDir, rootfsFormat: 'cpio' });
    await build();
    const again = await build();
    assert.equal(again.build?.stepsRun, 0);
    assert.ok(again.packagingCached);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
});
