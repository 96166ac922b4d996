// Limits and isolation of `micro` instances on a real `ukcd node` (security case 13):
// memory limit kill with its stop reason, on-failure restarts with backoff, no
// access to other instances' files or processes, no host paths, `<name>.internal`
// between instances, replicas.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, fetchText, instanceLog, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon, type Instance, type TestEnv } from './node-support.js';

const root = process.getuid?.() === 0;
let env: TestEnv;
let central: Daemon | undefined;
let node: Daemon | undefined;

before(async () => {
  if (!root) return;
  env = newEnv('node-iso');
  central = await startCentral(env);
  const rootfs = busyboxRootfs(env.dir, 'page of a\n');
  await buildAndPush(env, rootfs, central.url, 'alice/box', 'latest', ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www']);
  node = await startNode(env, central.url);
});

after(async () => {
  if (!root) return;
  await stopDaemon(node);
  await stopDaemon(central);
  await cleanupEnv(env);
});

async function create(body: Record<string, unknown>): Promise<Instance[]> {
  const r = await api((node as Daemon).url, 'POST', '/v1/instances', { image: 'alice/box:latest', autostart: true, ...body });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data?.instances as Instance[];
}

test('an app allocating past memory_mb is killed by the limit and the stop reason says so', async (t) => {
  if (!root) return t.skip('needs root');
  await create({ name: 'hog', memory_mb: 16, args: ['/bin/busybox', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1'] });
  const done = await waitInstance((node as Daemon).url, 'hog', (i) => i.state === 'stopped');
  assert.equal(done.stop_reason, 5, JSON.stringify(done)); // platform + kernel: a limit kill
  assert.equal(done.stop_code, 9);
});

test('a crashing app with restart_policy on-failure is restarted, then backs off', async (t) => {
  if (!root) return t.skip('needs root');
  await create({ name: 'crasher', memory_mb: 32, restart_policy: 'on-failure', args: ['/bin/sh', '-c', 'echo boom; exit 3'] });
  // First restart is immediate; after the second failure the next one waits the 5 s base delay.
  const backing = await waitInstance((node as Daemon).url, 'crasher', (i) => (i.restart as { attempt: number }).attempt >= 2 && i.state === 'stopped');
  assert.ok((backing.restart_count as number) >= 1);
  assert.equal(backing.exit_code, 3);
  assert.equal(backing.stop_reason, 3);
  const nextAt = Date.parse((backing.restart as { next_at: string }).next_at);
  const stoppedAt = Date.parse(backing.stopped_at as string);
  assert.ok(nextAt - stoppedAt >= 4_000 && nextAt - stoppedAt <= 6_000, `backoff ${nextAt - stoppedAt} ms`);
  await api((node as Daemon).url, 'DELETE', '/v1/instances/crasher');
});

test('instances cannot read each other\'s files, see only their own processes and no host path; <name>.internal resolves', async (t) => {
  if (!root) return t.skip('needs root');
  await create({ name: 'alpha', memory_mb: 32, args: ['/bin/sh', '-c', 'echo s3cret > /www/secret.txt; echo s3cret > /tmp/secret.txt; exec /bin/busybox httpd -f -p 8080 -h /www'] });
  const a = await waitInstance((node as Daemon).url, 'alpha', (i) => typeof i.net_time_us === 'number');
  // The node reaches alpha; alpha wrote its secret into its own writable layer.
  assert.equal(await fetchText(`http://${a.private_ip as string}:8080/secret.txt`), 's3cret\n');
  await create({
    name: 'beta',
    memory_mb: 32,
    args: ['/bin/sh', '-c', 'cat /www/secret.txt /tmp/secret.txt; echo "rc=$?"; echo "procs:" $(ls /proc | grep "^[0-9]*$"); echo "root:" $(ls /); wget -q -O - http://alpha.internal:8080/index.html; exit 0'],
  });
  await waitInstance((node as Daemon).url, 'beta', (i) => i.state === 'stopped');
  const log = await instanceLog((node as Daemon).url, 'beta');
  assert.doesNotMatch(log, /s3cret/);
  assert.match(log, /rc=1/);
  const procs = (/procs: ([\d ]*)/.exec(log)?.[1] ?? '').trim().split(' ').map(Number);
  assert.ok(procs.includes(1) && procs.every((p) => p < 20) && procs.length <= 6, `own processes only: ${procs.join(',')}`);
  const rootDirs = (/root: (.*)/.exec(log)?.[1] ?? '').split(' ');
  for (const hostOnly of ['home', 'usr', 'var', 'root', 'boot']) assert.ok(!rootDirs.includes(hostOnly), `host /${hostOnly} is not visible: ${rootDirs.join(' ')}`);
  assert.match(log, /page of a/, `alpha.internal reached from beta:\n${log}`);
  await api((node as Daemon).url, 'DELETE', '/v1/instances/alpha');
  await api((node as Daemon).url, 'DELETE', '/v1/instances/beta');
});

test('replicas: 2 gives three running instances with distinct private IPs', async (t) => {
  if (!root) return t.skip('needs root');
  const made = await create({ name: 'rep', memory_mb: 32, replicas: 2, timeout_s: 20 });
  assert.equal(made.length, 3);
  const ips = new Set<string>();
  for (const m of made) {
    const i = await waitInstance((node as Daemon).url, m.name, (x) => x.state === 'running' && typeof x.private_ip === 'string');
    ips.add(i.private_ip as string);
  }
  assert.equal(ips.size, 3);
  for (const m of made) await api((node as Daemon).url, 'DELETE', `/v1/instances/${m.name}`);
});
