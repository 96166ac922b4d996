// End-to-end: EROFS loop mounts and overlays on the host side, and an overlay rootfs mounted
// by the launcher inside the sandbox only.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { isMountPoint, mountErofs, mountOverlay, mountsUnder, spawnSandbox, unmount } from '../../src/sandbox/index.js';
import { IS_ROOT, PATH_ENV, makeBusyboxRoot } from './sandbox-fixtures.js';

test('sandbox mounts', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const { dir, root } = makeBusyboxRoot();
  const image = join(dir, 'root.erofs');
  const lower = join(dir, 'lower');
  const merged = join(dir, 'merged');
  t.after(async () => {
    await unmount(merged, { lazyFallback: true });
    await unmount(lower, { lazyFallback: true });
    rmSync(dir, { recursive: true, force: true });
  });
  writeFileSync(join(root, 'hello.txt'), 'from-image\n');
  execFileSync('mkfs.erofs', [image, root], { stdio: 'ignore' });
  for (const d of [lower, merged, join(dir, 'up'), join(dir, 'work')]) mkdirSync(d);

  await mountErofs(image, lower);
  assert.equal(isMountPoint(lower), true);
  assert.equal(readFileSync(join(lower, 'hello.txt'), 'utf8'), 'from-image\n');
  assert.throws(() => writeFileSync(join(lower, 'x'), 'y'), /EROFS|read-only/);

  // The instance path: image read-only below, private upper; overlay mounted inside the sandbox only.
  const inst = spawnSandbox({
    rootfs: merged,
    overlay: { lower: [lower], upper: join(dir, 'up'), work: join(dir, 'work') },
    env: [PATH_ENV],
    argv: ['sh', '-c', 'cat /hello.txt; echo mine > /written.txt'],
  });
  let out = '';
  inst.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  assert.equal((await inst.exited).code, 0);
  assert.equal(out, 'from-image\n');
  assert.equal(readFileSync(join(dir, 'up', 'written.txt'), 'utf8'), 'mine\n');
  assert.equal(existsSync(join(lower, 'written.txt')), false);
  assert.equal(mountsUnder(merged).length, 0, 'the overlay vanished with the sandbox');

  // Host-side overlay helper and unmount.
  await assert.rejects(mountOverlay({ lower: [lower], target: merged }), /two lower/);
  const extra = join(dir, 'extra');
  mkdirSync(extra);
  writeFileSync(join(extra, 'top.txt'), 'top\n');
  await mountOverlay({ lower: [extra, lower], target: merged });
  assert.deepEqual(readdirSync(merged).sort(), [...readdirSync(root), 'top.txt'].sort());
  await unmount(merged);
  assert.equal(isMountPoint(merged), false);
  await unmount(lower);
  assert.equal(isMountPoint(lower), false);
  await unmount(lower); // unmounting twice is fine
});
