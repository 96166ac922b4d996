// End to end: how the real node reads image references. An official short name
// (`base-compat:latest`) is `official/base-compat` on the central registry; the
// central's host may be spelled out; the node's own registry serves what was pushed
// to it; any other registry host is refused before a connection is made, unless the
// node was started with --allow-registry for it (security-cases.md row 10).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, newEnv, startCentral, startDaemon, startNode, stopDaemon, type Daemon, type Instance } from './node-support.js';
import { join } from 'node:path';

test('image references on the node: official short names, explicit hosts, refused and allowed registries', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('node-images');
  let central: Daemon | undefined;
  let other: Daemon | undefined;
  let node: Daemon | undefined;
  const seen: Socket[] = [];
  const foreign = createServer((s) => {
    seen.push(s);
    s.destroy();
  });
  try {
    await new Promise<void>((r) => foreign.listen(0, '127.0.0.1', r));
    const foreignHost = `127.0.0.1:${(foreign.address() as { port: number }).port}`;
    central = await startCentral(env);
    other = await startDaemon(['registry', '--listen', '127.0.0.1:0', '--data', join(env.dir, 'other')]);
    const rootfs = busyboxRootfs(env.dir, 'x\n');
    const cmd = ['/bin/busybox', 'sleep', '3600'];
    const official = await buildAndPush(env, rootfs, central.url, 'official/base-compat', 'latest', cmd);
    const fromOther = await buildAndPush(env, rootfs, other.url, 'bob/tool', 'v1', ['/bin/busybox', 'sleep', '7200']);
    node = await startNode(env, central.url, '127.0.0.1:0', ['--allow-registry', other.url]);
    const centralHost = new URL(central.url).host;
    const nodeHost = new URL(node.url).host;

    const create = (name: string, image: string): ReturnType<typeof api> => api(node!.url, 'POST', '/v1/instances', { name, image, memory_mb: 32, autostart: false });
    const imageOf = (r: Awaited<ReturnType<typeof api>>): unknown => (r.body.data?.instances as Instance[] | undefined)?.[0]?.image;

    const short = await create('short', 'base-compat:latest');
    assert.equal(short.status, 200, JSON.stringify(short.body));
    assert.equal(imageOf(short), `official/base-compat@${official.digest}`, 'an official short name is official/<name>');

    const explicit = await create('explicit', `${centralHost}/base-compat:latest`);
    assert.equal(explicit.status, 200, JSON.stringify(explicit.body));
    assert.equal(imageOf(explicit), `official/base-compat@${official.digest}`);

    const local = await create('local', `${nodeHost}/official/base-compat@${official.digest}`);
    assert.equal(local.status, 200, JSON.stringify(local.body));
    const localMissing = await create('local-missing', `${nodeHost}/nobody/nothing:latest`);
    assert.equal(localMissing.status, 404, JSON.stringify(localMissing.body));

    const refused = await create('refused', `${foreignHost}/alice/app:latest`);
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.match(JSON.stringify(refused.body), /not allowed on this node/);
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(seen.length, 0, 'the refused host saw no connection');

    const allowed = await create('allowed', `${new URL(other.url).host}/bob/tool:v1`);
    assert.equal(allowed.status, 200, JSON.stringify(allowed.body));
    assert.equal(imageOf(allowed), `ext-127-0-0-1-${new URL(other.url).port}/bob/tool@${fromOther.digest}`);
  } finally {
    await stopDaemon(node);
    await stopDaemon(other);
    await stopDaemon(central);
    await new Promise<void>((r) => foreign.close(() => r()));
    await cleanupEnv(env);
  }
});
