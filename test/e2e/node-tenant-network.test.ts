/**
 * Security cases 18 and 19 (names) on real instances: alice's two instances
 * and bob's one run busybox httpd under MicroDriver with the node's network
 * (nftables tenant rules on). Traffic is sent from inside alice's network
 * namespace (`ip netns exec`, as root, so forged sources are possible there
 * even though the instance itself has no CAP_NET_RAW). Then the rules are
 * reinstalled (a node restart) and behave the same, and stopping everything
 * leaves no table, element or hosts file behind. Needs root and nft.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readFileSync, readdirSync, symlinkSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { firewallTableName, NodeNetwork, readLeases } from '../../src/node/network/index.js';
import { MicroDriver } from '../../src/node/runtime/micro.js';
import type { RuntimeEvent, RuntimeHandle } from '../../src/node/runtime/driver.js';
import { detectCgroupLayout } from '../../src/sandbox/index.js';
import { busyboxRootfs, cleanupEnv, fetchText, newEnv } from './node-support.js';

const nftOk = spawnSync('nft', ['--version']).status === 0;

function nsRun(netns: string, argv: string[], timeoutMs = 8000): { code: number | null; out: string } {
  const r = spawnSync('ip', ['netns', 'exec', netns, ...argv], { encoding: 'utf8', timeout: timeoutMs });
  return { code: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/** An HTTP GET from inside `netns` (node, not busybox wget: the static wget crashes resolving under `ip netns exec`). */
function wget(netns: string, url: string): { code: number | null; out: string } {
  const script = `require('http').get(${JSON.stringify(url)},{timeout:2000},(r)=>r.pipe(process.stdout)).on('error',()=>process.exit(1)).on('timeout',function(){this.destroy();process.exit(1)})`;
  return nsRun(netns, [process.execPath, '-e', script]);
}

function arping(netns: string, ip: string): boolean {
  return nsRun(netns, ['/bin/busybox', 'arping', '-f', '-c', '2', '-w', '2', '-I', 'eth0', ip]).code === 0;
}

/** Sends one UDP datagram from `netns` with source `from` (added to eth0 when it is not the instance's own). */
function sendUdp(netns: string, from: string, to: string, port: number, text: string): void {
  const script = `const s=require('dgram').createSocket('udp4');s.bind({address:${JSON.stringify(from)}},()=>s.send(${JSON.stringify(text)},${port},${JSON.stringify(to)},()=>s.close()))`;
  const r = nsRun(netns, [process.execPath, '-e', script]);
  assert.equal(r.code, 0, r.out);
}

/** A UDP listener inside `netns`; `received()` is what arrived so far. */
function udpListener(netns: string, port: number): { received: () => string; stop: () => void; ready: Promise<void> } {
  const script = `const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>process.stdout.write(r.address+' '+m+'\\n'));s.bind(${port},()=>process.stdout.write('ready\\n'))`;
  const child = spawn('ip', ['netns', 'exec', netns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => {
    out += d;
    if (out.includes('ready\n')) onReady();
  });
  return { received: () => out.replace('ready\n', ''), stop: () => child.kill('SIGKILL'), ready };
}

function cgroupPids(parent: string, group: string): number[] {
  const layout = detectCgroupLayout();
  const root = layout.version === 2 ? layout.mountPoint : layout.mountPoints.memory;
  return readFileSync(join(root, parent, group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
}

/** The /etc/hosts an instance's own processes see (through their root). */
function hostsSeenBy(parent: string, group: string): string {
  for (const pid of cgroupPids(parent, group)) {
    try {
      const text = readFileSync(`/proc/${pid}/root/etc/hosts`, 'utf8');
      if (text.includes('node.internal')) return text;
    } catch {
      // gone or not in the sandbox yet
    }
  }
  throw new Error('no process of the instance shows the node hosts file');
}

function tables(): string {
  return execFileSync('nft', ['list', 'tables'], { encoding: 'utf8' });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('rows 18 and 19: tenant network and .internal names on real instances (cross-tenant TCP/ARP/spoofed UDP blocked, same tenant works, host unreachable, nothing left at stop)', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  if (!nftOk) return t.skip('needs nft (Debian nftables)');
  const env = newEnv('tenantnet');
  const rootfs = busyboxRootfs(env.dir, 'hello\n');
  symlinkSync('busybox', join(rootfs, 'bin', 'arping'));
  const stateDir = join(env.dir, 'network');
  const network = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir, poolSize: 2 });
  const driver = new MicroDriver({ runsDir: join(env.dir, 'runs'), network, cgroupParent: env.cgroupParent });
  const table = firewallTableName(env.bridge);
  const handles: RuntimeHandle[] = [];
  const hostTcp = createServer((_req, res) => res.end('host secret\n'));
  const hostUdp = createSocket('udp4');
  const hostUdpGot: string[] = [];
  try {
    await network.init();
    await driver.init();
    await network.poolFilled();
    assert.match(tables(), new RegExp(`table bridge ${table}\\b`));
    assert.match(tables(), new RegExp(`table inet ${table}\\b`));

    const start = async (name: string, owner: string): Promise<{ ip: string; netns: string; cgroup: string; uuid: string }> => {
      const uuid = crypto.randomUUID();
      const events: RuntimeEvent[] = [];
      const handle = await driver.start(
        {
          uuid,
          name,
          owner,
          image: 'test/tn@sha256:' + '0'.repeat(64),
          rootfs: { kind: 'cpio', path: rootfs },
          args: ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'],
          env: { PATH: '/bin' },
          memoryMb: 48,
          vcpus: 1,
          privateFqdn: `${name}.internal`,
        },
        { onEvent: (e) => events.push(e), onOutput: () => undefined },
      );
      handles.push(handle);
      for (let i = 0; i < 200 && !events.some((e) => e.type === 'listening'); i++) await sleep(50);
      const started = events.find((e) => e.type === 'started');
      assert.ok(started?.type === 'started' && started.privateIp, `${name} started`);
      const lease = readLeases(stateDir).get(uuid);
      const ref = JSON.parse(handle.runtimeRef) as { cgroup: string };
      return { ip: started.privateIp, netns: lease?.netns as string, cgroup: ref.cgroup, uuid };
    };
    // Same name in both accounts: `svc` must resolve to each account's own.
    const a1 = await start('svc', 'alice');
    const a2 = await start('peer', 'alice');
    const b1 = await start('svc', 'bob');

    // Gateway path: the host reaches every instance.
    for (const i of [a1, a2, b1]) assert.equal(await fetchText(`http://${i.ip}:8080/`), 'hello\n');

    const checkIsolation = async (when: string): Promise<void> => {
      // Same tenant: TCP and ARP work.
      assert.equal(wget(a1.netns, `http://${a2.ip}:8080/`).out, 'hello\n', `${when}: alice reaches alice`);
      assert.equal(wget(a2.netns, `http://${a1.ip}:8080/`).out, 'hello\n', `${when}: and back`);
      assert.ok(arping(a1.netns, a2.ip), `${when}: ARP within alice's account`);
      // Cross tenant: TCP and ARP blocked both ways.
      assert.notEqual(wget(a1.netns, `http://${b1.ip}:8080/`).code, 0, `${when}: alice cannot reach bob by TCP`);
      assert.notEqual(wget(b1.netns, `http://${a1.ip}:8080/`).code, 0, `${when}: bob cannot reach alice by TCP`);
      assert.ok(!arping(a1.netns, b1.ip), `${when}: no ARP answer from bob`);
      assert.ok(!arping(b1.netns, a2.ip), `${when}: no ARP answer from alice`);
    };
    await checkIsolation('first install');

    // The host: listeners on 0.0.0.0 (TCP and UDP) unreachable on the bridge address and on the host's other addresses.
    await new Promise<void>((r) => hostTcp.listen(0, '0.0.0.0', () => r()));
    const tcpPort = (hostTcp.address() as AddressInfo).port;
    hostUdp.on('message', (m, r) => hostUdpGot.push(`${r.address} ${m.toString()}`));
    await new Promise<void>((r) => hostUdp.bind(0, '0.0.0.0', () => r()));
    const udpPort = hostUdp.address().port;
    const hostAddrs = [network.gatewayIp, ...Object.values(networkInterfaces()).flat().filter((a) => a && a.family === 'IPv4' && !a.internal).map((a) => a!.address)];
    for (const addr of new Set(hostAddrs)) {
      const r = wget(a1.netns, `http://${addr}:${tcpPort}/`);
      assert.ok(!r.out.includes('host secret'), `host TCP listener reached on ${addr}`);
      sendUdp(a1.netns, a1.ip, addr, udpPort, `from-alice-to-${addr}`);
    }

    // Spoofing: bob's address forged on alice's eth0, sent to alice's other instance and to the host.
    const l = udpListener(a2.netns, 9999);
    try {
      await l.ready;
      sendUdp(a1.netns, a1.ip, a2.ip, 9999, 'genuine');
      nsRun(a1.netns, ['ip', 'addr', 'add', `${b1.ip}/32`, 'dev', 'eth0']);
      sendUdp(a1.netns, b1.ip, a2.ip, 9999, 'forged');
      sendUdp(a1.netns, b1.ip, network.gatewayIp, udpPort, 'forged-to-host');
      nsRun(a1.netns, ['ip', 'addr', 'del', `${b1.ip}/32`, 'dev', 'eth0']);
      await sleep(500);
      assert.match(l.received(), new RegExp(`^${a1.ip.replace(/\./g, '\\.')} genuine$`, 'm'), 'the genuine datagram arrives');
      assert.doesNotMatch(l.received(), /forged/, 'a datagram with a forged source is dropped');
      assert.deepEqual(hostUdpGot, [], 'nothing reached the host UDP listener');
    } finally {
      l.stop();
    }
    // A forged MAC: alice's own IP from another MAC reaches nobody.
    const mac = execFileSync('ip', ['-n', a1.netns, '-o', 'link', 'show', 'dev', 'eth0'], { encoding: 'utf8' }).match(/link\/ether (\S+)/)?.[1] as string;
    execFileSync('ip', ['-n', a1.netns, 'link', 'set', 'dev', 'eth0', 'address', '02:00:00:00:be:ef']);
    assert.notEqual(wget(a1.netns, `http://${a2.ip}:8080/`).code, 0, 'a forged MAC is dropped');
    execFileSync('ip', ['-n', a1.netns, 'link', 'set', 'dev', 'eth0', 'address', mac]);

    // Row 19: `svc.internal` is each account's own; bob's names are absent from alice's view and back.
    const aliceHosts = hostsSeenBy(env.cgroupParent, a1.cgroup);
    const bobHosts = hostsSeenBy(env.cgroupParent, b1.cgroup);
    assert.match(aliceHosts, new RegExp(`^${a1.ip.replace(/\./g, '\\.')}\\tsvc\\.internal$`, 'm'));
    assert.match(aliceHosts, new RegExp(`^${a2.ip.replace(/\./g, '\\.')}\\tpeer\\.internal$`, 'm'));
    assert.ok(!aliceHosts.includes(b1.ip), "bob's instance is not in alice's /etc/hosts");
    assert.match(bobHosts, new RegExp(`^${b1.ip.replace(/\./g, '\\.')}\\tsvc\\.internal$`, 'm'));
    assert.ok(!bobHosts.includes(a1.ip) && !bobHosts.includes('peer.internal'), "alice's instances are not in bob's");

    // A node restart reinstalls the tables whole from the leases: same behaviour, one table per family.
    await network.init();
    await network.poolFilled();
    assert.equal(tables().split('\n').filter((x) => x.includes(table)).length, 2);
    await checkIsolation('after reinstall');

    // Stop: elements go with each instance; with none left, close removes the tables.
    for (const h of handles.splice(0)) await h.stop(2000);
    for (let i = 0; i < 100 && [...readLeases(stateDir).keys()].some((k) => !k.startsWith('pool:')); i++) await sleep(50);
    const listed = execFileSync('nft', ['list', 'table', 'bridge', table], { encoding: 'utf8' });
    assert.doesNotMatch(listed, /tenant_of \{[^}]*elements/, 'no tenant element left');
    await driver.close();
    await network.close();
    assert.doesNotMatch(tables(), new RegExp(table), 'no table left after close');
    assert.deepEqual(readdirSync(join(stateDir, 'hosts.d')), [], 'no hosts file left');
  } finally {
    hostTcp.close();
    hostUdp.close();
    for (const h of handles) await h.kill().catch(() => undefined);
    await driver.close().catch(() => undefined);
    await network.close().catch(() => undefined);
    await network.destroy().catch(() => undefined);
    if (existsSync(stateDir)) await cleanupEnv(env);
  }
});

test('row 18: a new node process on the same state rebuilds the same rules from the leases (owners and MACs persisted); the last detach and close leave nothing', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  if (!nftOk) return t.skip('needs nft (Debian nftables)');
  const env = newEnv('tenantnet-restart');
  const stateDir = join(env.dir, 'network');
  const table = firewallTableName(env.bridge);
  const www = join(env.dir, 'www');
  execFileSync('mkdir', ['-p', www]);
  execFileSync('sh', ['-c', `echo hello > ${www}/index.html`]);
  const servers: ReturnType<typeof spawn>[] = [];
  let first: NodeNetwork | undefined = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir, poolSize: 1 });
  let second: NodeNetwork | undefined;
  try {
    await first.init();
    const ids = { a1: crypto.randomUUID(), a2: crypto.randomUUID(), b1: crypto.randomUUID() };
    const a1 = await first.attach(ids.a1, 'one', 'alice');
    const a2 = await first.attach(ids.a2, 'two', 'alice');
    const b1 = await first.attach(ids.b1, 'one', 'bob');
    await Promise.all([a1.ready, a2.ready, b1.ready]);
    for (const a of [a1, a2, b1]) servers.push(spawn('ip', ['netns', 'exec', a.netnsName, '/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', www], { stdio: 'ignore' }));
    await sleep(300);
    const check = (when: string): void => {
      assert.equal(wget(a1.netnsName, `http://${a2.ip}:8080/`).out, 'hello\n', `${when}: alice reaches alice`);
      assert.notEqual(wget(a1.netnsName, `http://${b1.ip}:8080/`).code, 0, `${when}: alice cannot reach bob`);
      assert.notEqual(wget(b1.netnsName, `http://${a2.ip}:8080/`).code, 0, `${when}: bob cannot reach alice`);
    };
    check('first process');
    // The node process goes away with its instances running: the rules stay (they protect them).
    await first.close();
    first = undefined;
    assert.match(tables(), new RegExp(`table bridge ${table}\\b`));
    const leases = readLeases(stateDir);
    assert.equal(leases.get(ids.b1)?.owner, 'bob');
    assert.match(leases.get(ids.b1)?.mac ?? '', /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/);
    // Someone flushed the table meanwhile: the new process puts everything back.
    execFileSync('nft', ['flush', 'table', 'bridge', table]);
    assert.equal(wget(a1.netnsName, `http://${b1.ip}:8080/`).out, 'hello\n', 'flushed, the bridge is flat: the checks are not vacuous');
    second = new NodeNetwork({ bridge: env.bridge, subnet: env.subnet, stateDir, poolSize: 1 });
    await second.init();
    await second.poolFilled();
    check('second process');
    assert.equal(tables().split('\n').filter((x) => x.includes(table)).length, 2, 'still one table per family');
    for (const s of servers.splice(0)) s.kill('SIGKILL');
    for (const id of Object.values(ids)) await second.detach(id);
    await second.close();
    assert.doesNotMatch(tables(), new RegExp(table), 'no table left');
    assert.equal(readLeases(stateDir).size, 0, 'no lease left');
  } finally {
    for (const s of servers) s.kill('SIGKILL');
    await first?.close().catch(() => undefined);
    await second?.close().catch(() => undefined);
    await cleanupEnv(env);
  }
});
