// The node's image cache budget (issue 13, item 3): over the budget, pulled images no live or
// standby instance uses are evicted least recently used first (manifest, blobs, rootfs); an
// image in use never is; an evicted image is pulled again when needed; use times persist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { LocalImages } from '../../src/node/images/local.js';
import { LOCAL_PRINCIPAL } from '../../src/node/auth.js';
import { createRegistry, openStores } from '../../src/registry/index.js';
import { startTestRegistry } from '../../src/registry/testkit.js';
import { directoryBytes } from '../../src/metrics/index.js';
import { buildAndPush, busyboxRootfs, newEnv } from './node-support.js';
import { rmSync } from 'node:fs';

const MiB = 1024 * 1024;

test('over its budget the cache evicts the least recently used image nobody uses; in-use images stay; evicted ones come back by pull', async () => {
  const env = newEnv('imgcache');
  const central = await startTestRegistry({ dataDir: join(env.dir, 'central') });
  const home = join(env.dir, 'node');
  const { blobs, metadata } = openStores(join(home, 'registry'));
  const registry = createRegistry({ blobs, metadata });
  const inUse = new Set<string>();
  const open = (): LocalImages =>
    new LocalImages({
      blobs,
      metadata,
      service: registry.service,
      cacheDir: join(home, 'rootfs'),
      registryHost: '127.0.0.1:1',
      centralUrl: central.url,
      cache: { budgetBytes: 24 * MiB, stateFile: join(home, 'image-cache.json'), registryDir: join(home, 'registry'), inUse: () => inUse, graceMs: 0 },
    });
  let images = open();
  try {
    // Three CPIO images of ~3 MiB each (blob + extracted tree: ~6 MiB per image on the node).
    for (const name of ['a', 'b', 'c']) {
      const rootfs = busyboxRootfs(join(env.dir, name), name);
      writeFileSync(join(rootfs, 'www', 'ballast'), randomBytes(3 * MiB));
      await buildAndPush(env, rootfs, central.url, `alice/${name}`, 'v1', ['/bin/httpd'], 'cpio');
    }
    const resolve = (name: string) => images.resolve({ url: `alice/${name}:v1`, pullPolicy: 'if_not_present' }, LOCAL_PRINCIPAL);
    const a = await resolve('a');
    inUse.add(a.digestRef); // a live instance runs A
    const b = await resolve('b'); // B's instance stopped since: not in use
    await new Promise((r) => setTimeout(r, 5));
    const c = await resolve('c');
    const used = async (): Promise<number> => (await directoryBytes(join(home, 'registry'))) + (await directoryBytes(join(home, 'rootfs')));
    assert.ok((await used()) <= 24 * MiB, `the cache fits its budget: ${await used()} bytes`);
    const has = async (ref: string): Promise<boolean> => {
      const [repo, digest] = ref.split('@') as [string, string];
      return (await metadata.getManifest(repo, digest)) !== undefined;
    };
    assert.equal(await has(b.digestRef), false, 'B (least recently used, unused) was evicted');
    assert.equal(existsSync(b.rootfs.path as string), false, "B's root filesystem went with it");
    assert.equal(await has(a.digestRef), true, 'A is in use: never evicted, although older');
    assert.equal(await has(c.digestRef), true, 'C was just pulled');
    // Use times persist: a restarted node evicts in the same order.
    await images.budget!.flushed();
    images.close();
    images = open();
    assert.deepEqual(images.budget!.candidates(), [a.digestRef, c.digestRef]);
    // B is needed again: pulled again; now C is the least recently used one nobody uses.
    const again = await resolve('b');
    assert.equal(again.digestRef, b.digestRef);
    assert.equal(await has(b.digestRef), true);
    assert.equal(await has(c.digestRef), false, 'C evicted in turn');
    assert.equal(await has(a.digestRef), true);
  } finally {
    images.close();
    await registry.close();
    await metadata.close();
    await central.close();
    rmSync(env.dir, { recursive: true, force: true });
  }
});
