import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { syncFileSystem, writeFileAtomic, writeFileAtomicSync, writeFileAtomicWith } from './durable.js';

test('writeFileAtomic replaces the whole file with the given mode and leaves no temp file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-durable-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'marker');
  await writeFile(path, 'old content that is longer');
  await writeFileAtomic(path, 'new\n');
  assert.equal(await readFile(path, 'utf8'), 'new\n');
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(dir), ['marker']);
  await assert.rejects(writeFileAtomic(join(dir, 'missing', 'x'), 'x'));
  assert.deepEqual(await readdir(dir), ['marker']);
  await syncFileSystem(dir);
  await assert.rejects(syncFileSystem(join(dir, 'missing')));
});

test('writeFileAtomicSync writes the exact mode and removes its temp file on failure', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-durable-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'secret');
  writeFileAtomicSync(path, 'token\n', { mode: 0o600, exactMode: true });
  assert.equal(await readFile(path, 'utf8'), 'token\n');
  assert.equal((await stat(path)).mode & 0o777, 0o600);
  await mkdir(join(dir, 'occupied', 'x'), { recursive: true });
  assert.throws(() => writeFileAtomicSync(join(dir, 'occupied'), 'x'));
  await assert.rejects(writeFileAtomic(join(dir, 'occupied'), 'x'));
  await assert.rejects(writeFileAtomicWith(join(dir, 'occupied'), (tmp) => writeFile(tmp, 'x')));
  assert.deepEqual((await readdir(dir)).sort(), ['occupied', 'secret']);
});
