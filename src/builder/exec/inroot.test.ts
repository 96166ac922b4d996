import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveInRoot } from './inroot.js';

test('resolveInRoot follows links inside the root and clamps escapes to it', async () => {
  const root = await mkdtemp(join(tmpdir(), 'ukc-inroot-'));
  try {
    await mkdir(join(root, 'usr/lib'), { recursive: true });
    await symlink('usr/lib', join(root, 'lib'));
    await symlink('/', join(root, 'toroot'));
    await symlink('../../../../etc', join(root, 'up'));
    await symlink('/proc/self/fd/3', join(root, 'fd'));
    await symlink('loop2', join(root, 'loop1'));
    await symlink('loop1', join(root, 'loop2'));
    assert.equal(await resolveInRoot(root, '/lib/libc.so.6'), join(root, 'usr/lib/libc.so.6'));
    assert.equal(await resolveInRoot(root, '/toroot/etc/passwd'), join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(root, 'up/passwd'), join(root, 'etc/passwd'));
    assert.equal(await resolveInRoot(root, '/../../etc/shadow'), join(root, 'etc/shadow'));
    assert.equal(await resolveInRoot(root, '/fd'), join(root, 'proc/self/fd/3'));
    assert.equal(await resolveInRoot(root, '/lib', { followFinal: false }), join(root, 'lib'));
    await assert.rejects(() => resolveInRoot(root, '/loop1/x'), /too many (levels of )?symbolic links/);
  } finally {
    await rm(root, { recursive: true, force: true });
  }
});
