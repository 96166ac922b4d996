/**
 * NodeNetwork under a burst: many attaches at once, more than the warm pool
 * holds, so most namespaces are built on demand by the ukc-netns helper
 * (rtnetlink). Each instance must get its own address, in its own netns, on
 * the bridge and reachable from the node; failures must name the netlink
 * operation and errno; nothing may be left behind. Unique bridge and subnet.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { NodeNetwork, readLeases } from '../../src/node/network/index.js';
import { NetlinkError, NetnsHelper, hostVethName } from '../../src/sandbox/index.js';
import { cleanupEnv, newEnv } from './node-support.js';

const run = promisify(execFile);
const BUSYBOX = '/bin/busybox';

function netnsNames(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

function links(): string {
  return execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
}

test('a burst of attaches: distinct addresses, each in its own netns, reachable from the node, nothing left after', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('netburst');
  const stateDir = join(env.dir, 'network');
  const net = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir, poolSize: 2 });
  const uuids = Array.from({ length: 16 }, () => randomUUID());
  const seen: string[] = [];
  try {
    await net.init();
    await net.poolFilled();
    const t0 = process.hrtime.bigint();
    const attached = await Promise.all(uuids.map((u, k) => net.attach(u, `burst${k}`, 'test')));
    t.diagnostic(`16 attaches at once took ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(1)} ms`);
    seen.push(...attached.map((a) => a.netnsName));

    assert.equal(new Set(attached.map((a) => a.ip)).size, uuids.length, 'distinct addresses');
    assert.equal(new Set(attached.map((a) => a.netnsName)).size, uuids.length, 'distinct namespaces');
    const leases = readLeases(stateDir);
    const all = links();
    for (const [k, a] of attached.entries()) {
      assert.equal(leases.get(uuids[k] as string)?.netns, a.netnsName, 'lease recorded');
      assert.ok(existsSync(a.netnsPath), a.netnsPath);
      const inside = execFileSync('ip', ['-n', a.netnsName, '-o', '-4', 'addr', 'show', 'dev', 'eth0', 'up'], { encoding: 'utf8' });
      assert.match(inside, new RegExp(` ${a.ip.replace(/\./g, '\\.')}/16 `));
      const route = execFileSync('ip', ['-n', a.netnsName, 'route', 'show', 'default'], { encoding: 'utf8' });
      assert.match(route, new RegExp(`default via ${net.gatewayIp.replace(/\./g, '\\.')} dev eth0`));
      assert.match(all, new RegExp(`${hostVethName(a.netnsName)}@.* master ${env.bridge} .*state UP`));
    }
    // Reachable from the node: the node's side of the bridge pings every instance address.
    const pings = await Promise.all(attached.map((a) => run(BUSYBOX, ['ping', '-c', '1', '-W', '2', a.ip]).then(() => true, () => false)));
    assert.deepEqual(pings, attached.map(() => true), 'every instance answers the node');

    await Promise.all(uuids.map((u) => net.detach(u)));
    const names = netnsNames();
    for (const a of attached) assert.ok(!names.includes(a.netnsName), `netns ${a.netnsName} removed`);
    const left = links();
    for (const a of attached) assert.ok(!left.includes(hostVethName(a.netnsName)), `veth of ${a.netnsName} removed`);
    for (const u of uuids) assert.equal(readLeases(stateDir).has(u), false, 'lease given back');
  } finally {
    await net.close();
    const slots = [...readLeases(stateDir).values()].map((l) => l.netns as string);
    assert.deepEqual(slots, [], 'no pool slot left after close');
    await net.destroy();
    await cleanupEnv(env);
    const names = netnsNames();
    for (const n of seen) assert.ok(!names.includes(n), `netns ${n} gone`);
    assert.ok(!links().includes(`${env.bridge}:`), 'bridge removed');
  }
});

test('netns helper: failures name the operation and errno and leave nothing behind', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const helper = new NetnsHelper();
  const name = `ukct-${randomUUID().slice(0, 8)}`;
  const other = `${name}-b`;
  const bridge = `ukcbr${randomUUID().slice(0, 4)}`;
  try {
    // No such bridge: RTM_GETLINK of the bridge fails with ENODEV; the netns file is taken back.
    const missing = await helper.add({ name, bridge, address: '10.241.0.5/24', gateway: '10.241.0.1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(missing instanceof NetlinkError, String(missing));
    assert.equal(missing.operation, 'RTM_GETLINK bridge');
    assert.equal(missing.errno, 19);
    assert.equal(missing.netns, name);
    assert.ok(!existsSync(`/run/netns/${name}`), 'no netns file left');
    assert.ok(!netnsNames().includes(name));

    // A netns name that is taken: EEXIST, and the existing one is untouched.
    execFileSync('ip', ['netns', 'add', other]);
    const taken = await helper.add({ name: other, bridge, address: '10.241.0.6/24', gateway: '10.241.0.1' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(taken instanceof NetlinkError);
    assert.equal(taken.operation, 'create netns file');
    assert.equal(taken.errno, 17);
    assert.ok(netnsNames().includes(other), 'the existing netns is kept');

    // Removing what does not exist is not an error.
    await helper.remove(name);
  } finally {
    await helper.remove(other).catch(() => undefined);
    helper.close();
  }
  assert.ok(!netnsNames().includes(other));
});

test('a full bridge is refused up front: the pool stops at the port limit and the next attach is ENOSPC, nothing half made', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('netfull');
  const stateDir = join(env.dir, 'network');
  // A limit of 3 ports stands for the kernel's 1023 (BR_MAX_PORTS): 2 pool slots + 1 on demand.
  const net = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir, poolSize: 2, maxPorts: 3 });
  const ids = [randomUUID(), randomUUID(), randomUUID()];
  try {
    await net.init();
    await net.poolFilled();
    const a = await net.attach(ids[0]!, 'a', 'test');
    const b = await net.attach(ids[1]!, 'b', 'test');
    await net.poolFilled();
    // Two instances hold two ports; the refill could add one slot only.
    assert.equal(net.poolReady, 1);
    const c = await net.attach(ids[2]!, 'c', 'test');
    await net.poolFilled();
    assert.equal(net.poolReady, 0, 'the pool does not grow past the limit');
    const before = readLeases(stateDir).size;
    const refused = await net.attach(randomUUID(), 'd', 'test').then(
      () => undefined,
      (err: unknown) => err as { errno?: unknown; message?: string },
    );
    assert.equal(refused?.errno, 28, String(refused?.message)); // ENOSPC
    assert.match(String(refused?.message), /instance network is full/);
    assert.equal(readLeases(stateDir).size, before, 'no lease left by the refused attach');
    for (const x of [a, b, c]) assert.ok(existsSync(x.netnsPath));
  } finally {
    await Promise.all(ids.map((u) => net.detach(u).catch(() => undefined)));
    await net.close();
    await net.destroy();
    await cleanupEnv(env);
  }
});
