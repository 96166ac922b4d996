// End-to-end: bridge + per-instance netns + veth, all inside a netns this test creates
// (the host's own network is never touched), and sandboxes joining those namespaces.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import {
  addressInSubnet,
  createInstanceNetwork,
  createNetns,
  ensureBridge,
  removeInstanceNetwork,
  removeNetns,
  spawnSandbox,
} from '../../src/sandbox/index.js';
import { IS_ROOT, PATH_ENV, makeBusyboxRoot } from './sandbox-fixtures.js';

test('sandbox network', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const { dir, root } = makeBusyboxRoot();
  const id = randomUUID().slice(0, 8);
  const hostNs = `ukct-${id}-host`;
  const names = [`ukct-${id}-a`, `ukct-${id}-b`];
  t.after(async () => {
    for (const n of names) await removeInstanceNetwork(n, hostNs);
    await removeNetns(hostNs);
    rmSync(dir, { recursive: true, force: true });
  });
  await createNetns(hostNs);
  const subnet = '10.231.0.0/24';
  const gw = addressInSubnet(subnet, 1);
  await ensureBridge({ name: 'ukc0', address: gw, inNetns: hostNs });
  await ensureBridge({ name: 'ukc0', address: gw, inNetns: hostNs }); // idempotent
  const t0 = process.hrtime.bigint();
  const a = await createInstanceNetwork({ name: names[0] as string, address: addressInSubnet(subnet, 10), gateway: '10.231.0.1', inNetns: hostNs });
  t.diagnostic(`createInstanceNetwork took ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`);
  const b = await createInstanceNetwork({ name: names[1] as string, address: addressInSubnet(subnet, 11), gateway: '10.231.0.1', inNetns: hostNs });

  // b listens; a connects to b's private IP through the bridge.
  const server = spawnSandbox({ rootfs: root, env: [PATH_ENV], network: { netnsPath: b.netnsPath }, argv: ['nc', '-l', '-p', '8080'], stderr: 'ignore' });
  let received = '';
  server.stdout?.setEncoding('utf8').on('data', (d: string) => (received += d));
  // The exit event can come before the last bytes of the pipe: wait for its end too.
  const serverOutEnded = new Promise<void>((r) => (server.stdout ? server.stdout.once('end', () => r()) : r()));
  await server.started;
  const client = spawnSandbox({
    rootfs: root,
    env: [PATH_ENV],
    network: { netnsPath: a.netnsPath },
    argv: ['sh', '-c', 'ip -o -4 addr show dev eth0; i=0; while [ $i -lt 50 ]; do echo hello-from-a | nc 10.231.0.11 8080 && exit 0; i=$((i+1)); sleep 0.1; done; exit 1'],
  });
  let clientOut = '';
  client.stdout?.setEncoding('utf8').on('data', (d: string) => (clientOut += d));
  client.stderr?.resume();
  const cexit = await client.exited;
  assert.equal(cexit.code, 0);
  assert.match(clientOut, /10\.231\.0\.10\/24/);
  const sexit = await Promise.race([server.exited, new Promise<null>((r) => setTimeout(() => r(null), 5000))]);
  if (sexit === null) await server.kill();
  await Promise.race([serverOutEnded, new Promise<void>((r) => setTimeout(r, 5000))]);
  assert.match(received, /hello-from-a/);

  // A sandbox with a fresh netns sees only lo.
  const lonely = spawnSandbox({ rootfs: root, env: [PATH_ENV], network: 'new', argv: ['ip', '-o', 'link'] });
  let links = '';
  lonely.stdout?.setEncoding('utf8').on('data', (d: string) => (links += d));
  await lonely.exited;
  assert.equal(links.trim().split('\n').length, 1);
});
