// End to end: build a busybox httpd image, push it to a central `ukcd registry`,
// run it on a `ukcd node` through REST v1, reach it on its private IP, stop (15),
// start, delete; the node's image list shows the pulled image with all its fields.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, fetchText, getInstance, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon, type Instance } from './node-support.js';

test('busybox httpd: build, push, create on a node, fetch over the private IP, stop, start, delete, images list', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('node-e2e');
  let central: Daemon | undefined;
  let node: Daemon | undefined;
  try {
    central = await startCentral(env);
    const rootfs = busyboxRootfs(env.dir, '<h1>hello from ukc</h1>\n');
    const image = await buildAndPush(env, rootfs, central.url, 'alice/httpd', 'latest', ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www']);
    node = await startNode(env, central.url);

    const created = await api(node.url, 'POST', '/v1/instances', { name: 'web', image: 'alice/httpd:latest', memory_mb: 64, autostart: true, timeout_s: 20 });
    assert.equal(created.status, 200, JSON.stringify(created.body));
    const item = (created.body.data?.instances as Instance[])[0] as Instance;
    assert.equal(item.state, 'running');
    assert.equal(item.image, `alice/httpd@${image.digest}`, 'the tag is pinned to the pushed digest');

    const running = await waitInstance(node.url, 'web', (i) => typeof i.net_time_us === 'number');
    const ip = running.private_ip as string;
    assert.match(ip, new RegExp(`^${env.subnet.split('.').slice(0, 2).join('\\.')}\\.`));
    assert.ok((running.boot_time_us as number) > 0 && (running.net_time_us as number) >= (running.boot_time_us as number));
    assert.equal(running.private_fqdn, 'web.internal');
    assert.equal(await fetchText(`http://${ip}:8080/`), '<h1>hello from ukc</h1>\n');

    // /metrics: root's token reads it (instances by state, the boot and network times just recorded); no token is refused.
    assert.equal((await fetch(`${node.url}/metrics`)).status, 401);
    const scrape = await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${node.token ?? ''}` } });
    assert.equal(scrape.status, 200);
    const metrics = await scrape.text();
    assert.match(metrics, /^ukc_instances\{state="running",role="node"\} 1$/m);
    assert.match(metrics, /^ukc_instance_boot_seconds_count\{role="node"\} 1$/m);
    assert.match(metrics, /^ukc_instance_net_seconds_count\{role="node"\} 1$/m);
    assert.match(metrics, /^ukc_http_requests_total\{route="\/v1\/instances",method="POST",status="200",role="node"\} 1$/m);
    assert.match(metrics, /^ukc_node_image_cache_bytes\{role="node"\} [1-9]\d{6,}$/m, 'the pulled image is in the cache');

    const stopped = await api(node.url, 'PUT', '/v1/instances/web/stop', {});
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    const afterStop = await waitInstance(node.url, 'web', (i) => i.state === 'stopped');
    assert.equal(afterStop.stop_reason, 15);
    await assert.rejects(fetch(`http://${ip}:8080/`, { signal: AbortSignal.timeout(1000) }));

    const started = await api(node.url, 'PUT', '/v1/instances/web/start', {});
    assert.equal(started.status, 200, JSON.stringify(started.body));
    const again = await waitInstance(node.url, 'web', (i) => i.state === 'running' && typeof i.private_ip === 'string');
    assert.equal(again.start_count, 2);
    assert.equal(await fetchText(`http://${again.private_ip as string}:8080/`), '<h1>hello from ukc</h1>\n');

    const list = await api(node.url, 'GET', '/v1/images/list');
    const images = list.body.data?.images as Record<string, unknown>[];
    const mine = images.find((i) => String(i.url).endsWith(`/alice/httpd@${image.digest}`));
    assert.ok(mine, JSON.stringify(images));
    assert.deepEqual(mine.tags, ['alice/httpd:latest']);
    assert.equal(mine.initrd_or_rom, true);
    assert.ok((mine.size_in_bytes as number) > 1_000_000, 'busybox alone is over 1 MB');
    assert.deepEqual(mine.args, ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www']);
    assert.deepEqual(mine.env, { PATH: '/bin' });
    assert.ok(!Number.isNaN(Date.parse(String(mine.created_at))));
    assert.equal(mine.owner, 'alice', 'the local single-tenant principal is root, so owner is shown');
    assert.deepEqual(mine.users, ['alice']);

    const deleted = await api(node.url, 'DELETE', '/v1/instances/web');
    assert.equal(deleted.status, 200, JSON.stringify(deleted.body));
    const gone = await api(node.url, 'GET', '/v1/instances/web');
    assert.notEqual(gone.status, 200);
    void getInstance;
  } finally {
    await stopDaemon(node);
    await stopDaemon(central);
    await cleanupEnv(env);
  }
});
