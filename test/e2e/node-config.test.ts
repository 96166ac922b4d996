// `ukcd node` takes its limits from ukcd.yaml and --set (src/config): the API's body limit
// and the local registry's blob limit, in a real node process (root: it sets up a bridge).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { cleanupEnv, newEnv, startDaemon, stopDaemon, type Daemon } from './node-support.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (the node sets up a bridge)';

test('ukcd node: limits from ukcd.yaml and --set take effect in the API and the local registry', { skip }, async () => {
  const env = newEnv('nodecfg');
  const cfg = join(env.dir, 'ukcd.yaml');
  writeFileSync(cfg, 'node_api:\n  max_body_bytes: 2KiB\nregistry:\n  max_blob_bytes: 64KiB\n');
  let node: Daemon | undefined;
  try {
    node = await startDaemon([
      'node', '--listen', '127.0.0.1:0', '--home', join(env.dir, 'node'), '--no-auth', '--no-gateway',
      '--bridge', env.bridge, '--subnet', env.subnet, '--cgroup-parent', env.cgroupParent,
      '--config', cfg, '--set', 'registry.max_blob_bytes=1KiB', '--log-level', 'warn',
    ]);
    const big = await fetch(`${node.url}/v1/instances`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ image: 'x'.repeat(4000) }) });
    await big.arrayBuffer();
    assert.equal(big.status, 413, 'above node_api.max_body_bytes (from the file)');
    const blob = Buffer.alloc(2000, 5);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const push = await fetch(`${node.url}/v2/local/app/blobs/uploads/?digest=${digest}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: blob });
    await push.arrayBuffer();
    assert.equal(push.status, 413, 'above registry.max_blob_bytes (--set over the file)');
  } finally {
    await stopDaemon(node);
    await cleanupEnv(env);
  }
});
