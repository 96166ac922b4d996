import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildCache, stepKey } from './cache.js';

test('stepKey changes with each input and ignores build-arg order', () => {
  const base = { parent: 'p', text: 'RUN x', inputs: 'sha256:1', args: ['A=1', 'B=2'] };
  const k = stepKey(base);
  assert.match(k, /^[a-f0-9]{64}$/);
  assert.equal(stepKey({ ...base, args: ['B=2', 'A=1'] }), k);
  for (const changed of [{ parent: 'q' }, { text: 'RUN y' }, { inputs: 'sha256:2' }, { args: ['A=2', 'B=2'] }]) {
    assert.notEqual(stepKey({ ...base, ...changed }), k, JSON.stringify(changed));
  }
});

test('BuildCache snapshots a rootfs exactly and shares snapshots for config-only states', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-cache-'));
  try {
    const root = join(dir, 'work');
    await mkdir(join(root, 'usr/bin'), { recursive: true });
    await writeFile(join(root, 'usr/bin/su'), 'x');
    await chmod(join(root, 'usr/bin/su'), 0o4755);
    await symlink('usr/bin', join(root, 'bin'));
    const cache = new BuildCache(join(dir, 'cache'));
    const k1 = stepKey({ parent: '', text: 'COPY a b' });
    assert.equal(await cache.getState(k1), undefined);
    await cache.putState(k1, { env: ['A=1'] }, { rootfs: root });
    await writeFile(join(root, 'usr/bin/su'), 'changed later');
    const hit = await cache.getState<{ env: string[] }>(k1);
    assert.deepEqual(hit?.config, { env: ['A=1'] });
    const snap = cache.rootfsOf(hit!.fsKey);
    assert.equal(await readFile(join(snap, 'usr/bin/su'), 'utf8'), 'x', 'snapshot is a copy, not a link to the work dir');
    assert.equal((await lstat(join(snap, 'usr/bin/su'))).mode & 0o7777, 0o4755);
    assert.equal(await readlink(join(snap, 'bin')), 'usr/bin');
    const k2 = stepKey({ parent: k1, text: 'ENV B=2' });
    await cache.putState(k2, { env: ['A=1', 'B=2'] }, { fsKey: k1 });
    assert.equal((await cache.getState(k2))?.fsKey, k1);
    assert.deepEqual(await readdir(join(dir, 'cache/tmp')), [], 'no temp entries left');
    await assert.rejects(() => cache.putState('../../x', {}, { fsKey: k1 }), /invalid cache key/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a cache write that fails leaves no temp file behind (putImage over a directory)', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ukc-cache-leak-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const cache = new BuildCache(root);
  const key = stepKey({ parent: '', text: 'FROM scratch' });
  // A directory where the image document goes: the rename over it fails (EISDIR).
  await mkdir(join(root, 'images', `${key}.json`, 'occupied'), { recursive: true });
  const image = { manifest: 'sha256:' + 'a'.repeat(64), config: 'sha256:' + 'b'.repeat(64), initrd: 'sha256:' + 'c'.repeat(64), layers: [] };
  await assert.rejects(cache.putImage(key, image));
  assert.deepEqual(await readdir(join(root, 'images')), [`${key}.json`]);
});
