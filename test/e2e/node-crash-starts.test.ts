// Fault 2 of issue 13: `kill -9` of the node while ~30 instances start, five times over. After
// each restart the network identity of every instance comes from the runtime's truth:
//  - no two instances report one private IP;
//  - every reported IP is the instance's own (its app answers there with its own name);
//  - the gateway routes each service group only to its own instances;
// and what dead runs left (cgroups without processes) is swept, never accumulated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { request } from 'node:http';
import { join } from 'node:path';
import { api, buildAndPush, freePort, busyboxRootfs, cleanupEnv, newEnv, startCentral, startNode, stopDaemon, type Daemon, type Instance, type TestEnv } from './node-support.js';
import { detectCgroupLayout } from '../../src/sandbox/index.js';
import { readLeases } from '../../src/node/network/index.js';

const GROUPS = 6;
const PER_GROUP = 5;
const ROUNDS = 5;
const ACCOUNTS = ['alice', 'bob', 'carol'];

function httpGet(port: number, host: string, address = '127.0.0.1'): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: address, port, path: '/', headers: { host }, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function listInstances(node: Daemon): Promise<Instance[]> {
  const r = await api(node.url, 'GET', '/v1/instances?details=true');
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data?.instances as Instance[];
}

/** Waits until no instance is in a transient state (recovery relaunches what was starting). */
async function settled(node: Daemon, timeoutMs = 60_000): Promise<Instance[]> {
  const deadline = Date.now() + timeoutMs;
  let last: Instance[] = [];
  while (Date.now() < deadline) {
    last = await listInstances(node);
    if (last.every((i) => i.state === 'running' || i.state === 'stopped')) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`instances never settled: ${JSON.stringify(last.map((i) => [i.name, i.state]))}`);
}

/** Empty cgroups under the test's parent (memory hierarchy, or the v2 tree): leftovers of dead runs. */
function emptyCgroups(env: TestEnv): string[] {
  const layout = detectCgroupLayout();
  const parent = join(layout.version === 2 ? layout.mountPoint : layout.mountPoints.memory, env.cgroupParent);
  if (!existsSync(parent)) return [];
  return readdirSync(parent, { withFileTypes: true })
    .filter((d) => d.isDirectory() && readFileSync(join(parent, d.name, 'cgroup.procs'), 'utf8').trim() === '')
    .map((d) => d.name);
}

/**
 * What a start cut by kill -9 can leave that no record knows: a process in its own cgroup under
 * the node's parent, in a netns the network leased to it, with a run directory.
 */
function plantOrphan(env: TestEnv): { uuid: string; pid: number; netns: string; runDir: string } {
  const uuid = randomUUID();
  const netns = `ukcn-${randomBytes(8).toString('hex')}`;
  execFileSync('ip', ['netns', 'add', netns]);
  const child = spawn('ip', ['netns', 'exec', netns, 'sleep', '600'], { detached: true, stdio: 'ignore' });
  child.unref();
  const pid = child.pid!;
  const layout = detectCgroupLayout();
  const roots = layout.version === 2 ? [layout.mountPoint] : [layout.mountPoints.memory, layout.mountPoints.cpu, layout.mountPoints.cpuacct, layout.mountPoints.pids];
  for (const r of [...new Set(roots)]) {
    const dir = join(r, env.cgroupParent, `i-${uuid}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'cgroup.procs'), String(pid));
  }
  const runDir = join(env.dir, 'node', 'runs', uuid);
  mkdirSync(runDir, { recursive: true });
  appendFileSync(join(env.dir, 'node', 'network', 'leases.log'), JSON.stringify({ k: uuid, l: { index: 250, name: 'ghost', netns } }) + '\n');
  return { uuid, pid, netns, runDir };
}

function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

async function check(node: Daemon, gatewayPort: number, groups: Map<string, string>, round: number): Promise<void> {
  const all = await settled(node);
  const byIp = new Map<string, string>();
  const running = all.filter((i) => i.state === 'running');
  for (const i of all) {
    const ip = i.private_ip as string | undefined;
    if (ip === undefined || ip === '') continue;
    assert.ok(!byIp.has(ip), `round ${round}: ${i.name} and ${byIp.get(ip)} both report ${ip}`);
    byIp.set(ip, i.name);
  }
  for (const i of running) {
    const ip = i.private_ip as string | undefined;
    assert.ok(ip, `round ${round}: running ${i.name} reports no IP`);
    // The app answers its own hostname (= the instance name): the IP is really this instance's.
    let got = '';
    for (let a = 0; a < 100; a++) {
      got = await httpGet(8080, ip, ip).then((r) => r.body.trim(), () => '');
      if (got !== '') break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(got, i.name, `round ${round}: ${i.name} reports ${ip}, which answers as ${got || 'nobody'}`);
  }
  for (const [group, fqdn] of groups) {
    const own = new Set(all.filter((i) => (i.service_group as { uuid?: string } | undefined)?.uuid === group).map((i) => i.name));
    const ownRunning = running.filter((i) => own.has(i.name));
    if (ownRunning.length === 0) continue;
    for (let k = 0; k < 3 * ownRunning.length; k++) {
      const r = await httpGet(gatewayPort, fqdn);
      if (r.status !== 200) continue; // 503 while a member is not ready is fine; another group's answer is not
      assert.ok(own.has(r.body.trim()), `round ${round}: ${fqdn} was served by ${r.body.trim()}, not one of ${[...own].join(', ')}`);
    }
  }
}

test('kill -9 during ~30 concurrent starts, five times: unique, own IPs; the gateway routes each group to its own; no leftovers', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const env = newEnv('crash-starts');
  let central: Daemon | undefined;
  let node: Daemon | undefined;
  const gatewayPort = await freePort();
  const nodeArgs = ['--port-map', `80=127.0.0.1:${gatewayPort}`];
  try {
    central = await startCentral(env);
    // The page is the instance's own hostname (its name), written at boot into the writable layer.
    const rootfs = busyboxRootfs(env.dir, 'unset\n');
    for (const account of ACCOUNTS) await buildAndPush(env, rootfs, central.url, `${account}/who`, 'v1', ['/bin/sh', '-c', 'hostname > /www/index.html && exec httpd -f -p 8080 -h /www']);
    node = await startNode(env, central.url, '127.0.0.1:0', nodeArgs);
    // The groups and their instances, made stopped; each round starts all ~30 at once.
    const groups = new Map<string, string>();
    // Three accounts, two groups each (a misroute would serve one tenant's name from another's instance).
    const tokens: string[] = [];
    for (const name of ACCOUNTS) {
      const made = await api(node.url, 'POST', '/v1/users', { name });
      const token = (made.body.data?.users as { token?: string }[] | undefined)?.[0]?.token;
      assert.ok(token, JSON.stringify(made.body));
      tokens.push(token);
    }
    for (let g = 0; g < GROUPS; g++) {
      const created = await api(node.url, 'POST', '/v1/instances', {
        name: `g${g}`,
        image: `${ACCOUNTS[g % ACCOUNTS.length]!}/who:v1`,
        memory_mb: 16,
        autostart: false,
        replicas: PER_GROUP - 1,
        service_group: { services: [{ port: 80, destination_port: 8080, handlers: ['http'] }] },
      }, tokens[g % ACCOUNTS.length]);
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const sg = (created.body.data?.instances as Instance[])[0]!.service_group as { uuid: string; domains: { fqdn: string }[] };
      groups.set(sg.uuid, sg.domains[0]!.fqdn);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      const starts: Promise<unknown>[] = [];
      for (const i of await listInstances(node)) starts.push(api(node.url, 'PUT', `/v1/instances/${i.uuid}/start`, {}).catch(() => undefined));
      // Kill while starts are in flight: a different point of the start path each round.
      await new Promise((r) => setTimeout(r, 20 + round * 40));
      await stopDaemon(node, 'SIGKILL');
      await Promise.allSettled(starts);
      const ghost = round === 1 ? plantOrphan(env) : undefined;
      node = await startNode(env, central.url, '127.0.0.1:0', nodeArgs);
      if (ghost) {
        // A run the records never knew of (kill -9 between spawn and record): swept before anything restarts.
        assert.match(node.output(), /swept [1-9]\d* cgroups, [1-9]\d* networks, [1-9]\d* run dirs/);
        assert.equal(processAlive(ghost.pid), false, 'the orphaned process is killed');
        assert.equal(existsSync(`/run/netns/${ghost.netns}`), false, 'its netns is removed');
        assert.equal(existsSync(ghost.runDir), false, 'its run directory is removed');
        assert.ok(!readLeases(join(env.dir, 'node', 'network')).has(ghost.uuid), 'its lease is dropped');
      }
      t.diagnostic(`round ${round}: ${/recovery: .*/.exec(node.output())?.[0] ?? ''}`);
      await check(node, gatewayPort, groups, round);
      let leftovers: string[] = [];
      for (let a = 0; a < 50; a++) {
        leftovers = emptyCgroups(env);
        if (leftovers.length === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.deepEqual(leftovers, [], `round ${round}: empty cgroups of dead runs stayed behind`);
      if (round < ROUNDS) {
        // Stop everything (forced, quickly) so the next round starts ~30 at once again.
        const all = await listInstances(node);
        await api(node.url, 'PUT', '/v1/instances/stop', all.map((i) => ({ uuid: i.uuid, force: true })));
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && (await listInstances(node)).some((i) => i.state !== 'stopped')) await new Promise((r) => setTimeout(r, 100));
      }
    }
  } finally {
    await stopDaemon(node);
    await stopDaemon(central);
    await cleanupEnv(env);
  }
});
