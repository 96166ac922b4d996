/**
 * The node's warm pools, end to end with real namespaces, cgroups and
 * launchers: the netns pool of NodeNetwork and the pre-started launchers of
 * MicroDriver are taken by a start, refilled, and removed at close, leaving no
 * netns, veth, cgroup, process or directory behind. Unique bridge, subnet and
 * cgroup parent per test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { NodeNetwork, readLeases } from '../../src/node/network/index.js';
import { MicroDriver } from '../../src/node/runtime/micro.js';
import type { RuntimeEvent, RuntimeHooks } from '../../src/node/runtime/driver.js';
import { Cgroup, detectCgroupLayout, hostVethName } from '../../src/sandbox/index.js';
import { busyboxRootfs, cleanupEnv, fetchText, newEnv } from './node-support.js';

function netnsNames(): string[] {
  return execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0] ?? '').filter(Boolean);
}

function links(): string {
  return execFileSync('ip', ['-o', 'link'], { encoding: 'utf8' });
}

function cgroupChildren(parent: string): string[] {
  const layout = detectCgroupLayout();
  const root = layout.version === 2 ? layout.mountPoint : layout.mountPoints.memory;
  const dir = join(root, parent);
  return existsSync(dir) ? readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name) : [];
}

test('netns pool: attach takes a ready namespace with its address, the pool refills, close removes the slots', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('netpool');
  const stateDir = join(env.dir, 'network');
  const net = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir, poolSize: 2 });
  const made: string[] = [];
  try {
    await net.init();
    await net.poolFilled();
    assert.equal(net.poolReady, 2);
    const slots = [...readLeases(stateDir)].filter(([k]) => k.startsWith('pool:')).map(([, l]) => l.netns as string);
    assert.equal(slots.length, 2);
    made.push(...slots);
    for (const s of slots) assert.ok(netnsNames().includes(s), `${s} exists`);

    const uuid = crypto.randomUUID();
    const a = await net.attach(uuid, 'web', 'alice');
    assert.ok(slots.includes(a.netnsName), 'the oldest ready slot was taken');
    assert.equal(net.poolReady, 1);
    // Ready means wired: eth0 holds the leased address, the host end is on the bridge.
    assert.match(execFileSync('ip', ['-n', a.netnsName, '-o', '-4', 'addr', 'show', 'dev', 'eth0'], { encoding: 'utf8' }), new RegExp(` ${a.ip.replace(/\./g, '\\.')}/`));
    assert.match(links(), new RegExp(`${hostVethName(a.netnsName)}@.* master ${env.bridge}`));
    assert.match(readFileSync(net.hostsPathFor('alice'), 'utf8'), new RegExp(`${a.ip.replace(/\./g, '\\.')}\\tweb\\.internal`));
    assert.doesNotMatch(readFileSync(net.hostsPathFor('alice'), 'utf8'), /\t\.internal/, 'pool slots have no name');
    assert.equal(readLeases(stateDir).get(uuid)?.netns, a.netnsName, 'the lease moved to the instance');

    await net.poolFilled();
    assert.equal(net.poolReady, 2, 'refilled');
    const after = [...readLeases(stateDir)].filter(([k]) => k.startsWith('pool:')).map(([, l]) => l.netns as string);
    made.push(...after);

    // A new node process on the same state (the old one "crashed") drops the old slots, not the instance.
    const again = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir, poolSize: 1 });
    await again.init();
    for (const s of after) assert.ok(!netnsNames().includes(s), `stale slot ${s} removed`);
    assert.ok(netnsNames().includes(a.netnsName), 'the instance keeps its netns');
    await again.poolFilled();
    made.push(...[...readLeases(stateDir)].filter(([k]) => k.startsWith('pool:')).map(([, l]) => l.netns as string));
    await again.close();
    await net.close();

    await again.detach(uuid);
    assert.equal(readLeases(stateDir).size, 0, 'no lease left');
    const names = netnsNames();
    const linkText = links();
    for (const n of made) {
      assert.ok(!names.includes(n), `netns ${n} removed`);
      assert.ok(!linkText.includes(hostVethName(n)), `veth of ${n} removed`);
    }
  } finally {
    await net.close().catch(() => undefined);
    await cleanupEnv(env);
  }
});

interface Recorded {
  events: RuntimeEvent[];
  hooks: RuntimeHooks;
  wait(type: RuntimeEvent['type'], timeoutMs: number): Promise<RuntimeEvent>;
}

function recorder(): Recorded {
  const events: RuntimeEvent[] = [];
  const waiters: (() => void)[] = [];
  return {
    events,
    hooks: {
      onEvent: (e) => {
        events.push(e);
        for (const w of waiters.splice(0)) w();
      },
      onOutput: () => undefined,
    },
    async wait(type, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = events.find((x) => x.type === type);
        if (e) return e;
        if (Date.now() > deadline) throw new Error(`no ${type} event within ${timeoutMs} ms: ${JSON.stringify(events)}`);
        await new Promise<void>((r) => {
          waiters.push(r);
          setTimeout(r, 50);
        });
      }
    },
  };
}

test('launcher pool: a start takes a pre-started launcher (limits applied, refilled); close leaves nothing', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('runpool');
  const rootfs = busyboxRootfs(env.dir, 'warm\n');
  const runsDir = join(env.dir, 'runs');
  const network = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir: join(env.dir, 'network'), poolSize: 1 });
  const driver = new MicroDriver({ runsDir, network, cgroupParent: env.cgroupParent, limits: { launcherPoolSize: 2 } });
  try {
    await network.init();
    await driver.init();
    await driver.poolFilled();
    await network.poolFilled();
    assert.equal(driver.warmReady, 2);
    const poolDirs = readdirSync(runsDir).filter((d) => d.startsWith('pool-'));
    assert.equal(poolDirs.length, 2);
    assert.deepEqual(cgroupChildren(env.cgroupParent).sort(), poolDirs.map((d) => `p-${d.slice(5)}`).sort());

    const uuid = crypto.randomUUID();
    const rec = recorder();
    const handle = await driver.start(
      {
        uuid,
        name: 'warm',
        owner: 'test',
        image: 'test/warm@sha256:' + '0'.repeat(64),
        rootfs: { kind: 'cpio', path: rootfs },
        args: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'],
        env: { PATH: '/bin' },
        memoryMb: 48,
        vcpus: 1,
        privateFqdn: 'warm.internal',
      },
      rec.hooks,
    );
    const ref = JSON.parse(handle.runtimeRef) as { cgroup: string; runDir: string };
    assert.match(ref.cgroup, /^p-[0-9a-f]{16}$/, 'the run uses a pre-started launcher');
    assert.ok(poolDirs.includes(`pool-${ref.cgroup.slice(2)}`), 'one of the ready ones');
    assert.equal(ref.runDir, join(runsDir, uuid));
    const started = await rec.wait('started', 10_000);
    const listening = await rec.wait('listening', 10_000);
    assert.ok(started.type === 'started' && started.bootTimeUs > 0 && started.privateIp);
    assert.ok(listening.type === 'listening' && listening.netTimeUs >= started.bootTimeUs);
    assert.deepEqual(rec.events.map((e) => e.type), ['started', 'listening']);
    const seenNetns = [...readLeases(join(env.dir, 'network')).values()].map((l) => l.netns as string);
    const limits = Cgroup.create(ref.cgroup, {}, { parent: env.cgroupParent }).readLimits();
    assert.equal(limits.memoryBytes, 48 * 1024 * 1024, 'the instance limits were written at take time');
    assert.equal(await fetchText(`http://${started.privateIp}:8080/`), 'warm\n');

    await driver.poolFilled();
    await network.poolFilled();
    assert.equal(driver.warmReady, 2, 'refilled');
    seenNetns.push(...[...readLeases(join(env.dir, 'network')).values()].map((l) => l.netns as string));

    await handle.stop(2000);
    await rec.wait('exited', 10_000);
    assert.ok(!existsSync(ref.runDir), 'run dir removed');
    assert.ok(!cgroupChildren(env.cgroupParent).includes(ref.cgroup), 'run cgroup removed');

    assert.equal(readdirSync(runsDir).filter((d) => d.startsWith('pool-')).length, 2);
    await driver.close();
    await network.close();
    assert.deepEqual(readdirSync(runsDir), [], 'no pool directory left');
    assert.deepEqual(cgroupChildren(env.cgroupParent), [], 'no cgroup left');
    assert.equal(readLeases(join(env.dir, 'network')).size, 0, 'no lease left');
    const names = netnsNames();
    const linkText = links();
    for (const n of seenNetns) {
      assert.ok(!names.includes(n), `netns ${n} removed`);
      assert.ok(!linkText.includes(hostVethName(n)), `veth of ${n} removed`);
    }
  } finally {
    await driver.close().catch(() => undefined);
    await network.close().catch(() => undefined);
    await cleanupEnv(env);
  }
});
