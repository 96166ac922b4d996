// End to end: an image whose initrd is a CPIO newc archive (packaged with rootfs
// format cpio) runs on a real `ukcd node`: the node extracts it once, confined,
// into its rootfs cache (src/oci/cpio-read.ts) and the instance serves from it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, lstat, readlink, stat } from 'node:fs/promises';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, fetchText, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon, type Instance } from './node-support.js';

test('a CPIO-initrd image runs through the real node from its extracted rootfs', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('node-cpio');
  let central: Daemon | undefined;
  let node: Daemon | undefined;
  try {
    central = await startCentral(env);
    const rootfs = busyboxRootfs(env.dir, '<h1>hello from a cpio initrd</h1>\n');
    symlinkSync('../www/index.html', join(rootfs, 'etc', 'page-link'));
    const image = await buildAndPush(env, rootfs, central.url, 'alice/cpio-httpd', 'latest', ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'], 'cpio');
    node = await startNode(env, central.url);

    const created = await api(node.url, 'POST', '/v1/instances', { name: 'cpioweb', image: 'alice/cpio-httpd:latest', memory_mb: 64, autostart: true, timeout_s: 20 });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    assert.equal((created.body.data?.instances as Instance[])[0]?.image, `alice/cpio-httpd@${image.digest}`);
    const running = await waitInstance(node.url, 'cpioweb', (i) => i.state === 'running' && typeof i.private_ip === 'string');
    assert.equal(await fetchText(`http://${running.private_ip as string}:8080/`), '<h1>hello from a cpio initrd</h1>\n');

    // The cache holds an extracted tree (no .img), marked ready as cpio, with links and modes as packaged.
    const cache = join(env.dir, 'node', 'rootfs');
    const names = await readdir(cache);
    // Private: the cache holds tenants' trees (setuid files included); no other local user reaches them.
    assert.equal((await stat(join(env.dir, 'node'))).mode & 0o777, 0o700, 'the node home is 0700');
    assert.equal((await stat(cache)).mode & 0o777, 0o700, 'the rootfs cache is 0700');
    const ready = names.filter((n) => n.endsWith('.ready'));
    assert.equal(ready.length, 1, names.join(','));
    assert.equal((await readFile(join(cache, ready[0] as string), 'utf8')).trim(), 'cpio');
    assert.ok(!names.some((n) => n.endsWith('.img')), 'a cpio initrd is extracted, not mounted');
    const tree = join(cache, (ready[0] as string).replace(/\.ready$/, ''));
    assert.equal(await readlink(join(tree, 'etc', 'page-link')), '../www/index.html');
    assert.equal(await readlink(join(tree, 'bin', 'sh')), 'busybox');
    assert.ok(((await lstat(join(tree, 'bin', 'busybox'))).mode & 0o111) !== 0, 'busybox stays executable');

    // A second instance reuses the prepared tree.
    const second = await api(node.url, 'POST', '/v1/instances', { name: 'cpioweb2', image: 'alice/cpio-httpd:latest', memory_mb: 64, autostart: true, timeout_s: 20 });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const r2 = await waitInstance(node.url, 'cpioweb2', (i) => i.state === 'running' && typeof i.private_ip === 'string');
    assert.equal(await fetchText(`http://${r2.private_ip as string}:8080/`), '<h1>hello from a cpio initrd</h1>\n');
    assert.deepEqual((await readdir(cache)).filter((n) => n.endsWith('.ready')), ready);
  } finally {
    await stopDaemon(node);
    await stopDaemon(central);
    await cleanupEnv(env);
  }
});
