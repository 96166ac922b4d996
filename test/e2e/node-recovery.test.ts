// `ukcd node` killed with SIGKILL: instances keep serving, and the next node
// process re-adopts them (same uuid, IP and run), loses no record or image,
// and can still stop them cleanly (stop_reason 15 through the adopted run).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, fetchText, getInstance, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon } from './node-support.js';

test('kill -9 of the node: running instances are re-adopted, records and images survive', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('node-rec');
  let central: Daemon | undefined;
  let node: Daemon | undefined;
  try {
    central = await startCentral(env);
    await buildAndPush(env, busyboxRootfs(env.dir, 'still here\n'), central.url, 'alice/web', 'v1', ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www']);
    node = await startNode(env, central.url);
    const r = await api(node.url, 'POST', '/v1/instances', { name: 'keep', image: 'alice/web:v1', memory_mb: 32, autostart: true, timeout_s: 20 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await api(node.url, 'POST', '/v1/instances', { name: 'idle', image: 'alice/web:v1', memory_mb: 32, autostart: false });
    const before = await waitInstance(node.url, 'keep', (i) => typeof i.net_time_us === 'number');
    const ip = before.private_ip as string;

    await stopDaemon(node, 'SIGKILL');
    // The instance does not depend on the node process.
    assert.equal(await fetchText(`http://${ip}:8080/`), 'still here\n');
    await stopDaemon(central); // the image must now come from the node's own registry

    node = await startNode(env, 'http://127.0.0.1:9');
    assert.match(node.output(), /adopted 1/);
    const after = await getInstance(node.url, 'keep');
    assert.equal(after.uuid, before.uuid);
    assert.equal(after.state, 'running');
    assert.equal(after.private_ip, ip);
    assert.equal(after.start_count, 1, 'adopted, not restarted');
    const idle = await getInstance(node.url, 'idle');
    assert.equal(idle.state, 'stopped');

    const list = await api(node.url, 'GET', '/v1/images/list');
    assert.equal((list.body.data?.images as unknown[]).length, 1);

    assert.equal((await api(node.url, 'PUT', '/v1/instances/keep/stop', {})).status, 200);
    const stopped = await waitInstance(node.url, 'keep', (i) => i.state === 'stopped');
    assert.equal(stopped.stop_reason, 15);
    // A fresh start after recovery works from the local registry alone.
    assert.equal((await api(node.url, 'PUT', '/v1/instances/idle/start', {})).status, 200);
    const idleUp = await waitInstance(node.url, 'idle', (i) => typeof i.net_time_us === 'number');
    assert.equal(await fetchText(`http://${idleUp.private_ip as string}:8080/`), 'still here\n');
    await api(node.url, 'DELETE', '/v1/instances/idle');
    await api(node.url, 'DELETE', '/v1/instances/keep');
  } finally {
    await stopDaemon(node);
    await stopDaemon(central);
    await cleanupEnv(env);
  }
});
