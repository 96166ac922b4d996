// The node's local registry (what `ukcd dev` and `ukcd node` serve on /v2) cuts a client
// that sends half a blob and stalls, with the listeners' one idle-timeout setting.
// In-process node over a test bridge (root: the node sets up its network at start).
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { startNodeServer } from '../../src/node/server.js';
import { stallMidBlob } from '../../src/registry/testkit.js';
import { DEFAULT_IDLE_TIMEOUT_MS } from '../../src/util/listener.js';
import { cleanupEnv, newEnv } from './node-support.js';

const skip = process.getuid?.() === 0 ? false : 'needs root (the node sets up a bridge)';

test("the node's local registry cuts a stalled half-blob client after the idle timeout", { skip }, async () => {
  const env = newEnv('idle');
  const home = join(env.dir, 'node');
  const common = { host: '127.0.0.1', port: 0, home, auth: { mode: 'none' as const }, bridge: env.bridge, subnet: env.subnet, cgroupParent: env.cgroupParent };
  try {
    const node = await startNodeServer({ ...common, idleTimeoutMs: 300 });
    try {
      const stalled = await stallMidBlob(node.url, 'idle/app', {}, 5_000);
      assert.equal(stalled.outcome, 'cut');
      assert.equal(stalled.status, undefined, 'cut mid-body');
      assert.ok(stalled.ms >= 250);
      for (let i = 0; i < 50 && readdirSync(join(home, 'registry', 'tmp')).length > 0; i++) await new Promise((t) => setTimeout(t, 20));
      assert.deepEqual(readdirSync(join(home, 'registry', 'tmp')), [], 'the partial upload is gone');
    } finally {
      await node.close();
    }
    const plain = await startNodeServer(common);
    try {
      assert.equal(plain.server.timeout, DEFAULT_IDLE_TIMEOUT_MS, 'the default is the shared setting');
    } finally {
      await plain.close();
    }
  } finally {
    await cleanupEnv(env);
  }
});
