// The tenant boundary of `micro` instances on a real `ukcd node` (issue 11; security cases
// 16, 17 and later rows in test/security/README.md). A static probe (fixtures/syscall-probe.c,
// compiled here) runs inside instances and reports what each call returned. Needs root and a
// C compiler (both in CI).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cgroup, detectCgroupLayout } from '../../src/sandbox/index.js';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, instanceLog, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon, type Instance, type TestEnv } from './node-support.js';

const root = process.getuid?.() === 0;
const PROBE_SRC = fileURLToPath(new URL('../../../test/e2e/fixtures/syscall-probe.c', import.meta.url));
let env: TestEnv;
let central: Daemon | undefined;
let node: Daemon | undefined;

before(async () => {
  if (!root) return;
  env = newEnv('node-boundary');
  central = await startCentral(env);
  const rootfs = busyboxRootfs(env.dir, 'boundary\n');
  const cc = spawnSync(process.env['CC'] ?? 'cc', ['-O2', '-static', '-o', join(rootfs, 'bin', 'probe'), PROBE_SRC], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  await buildAndPush(env, rootfs, central.url, 'alice/probe', 'latest', ['/bin/probe', 'seccomp_status']);
  node = await startNode(env, central.url);
});

after(async () => {
  if (!root) return;
  await stopDaemon(node);
  await stopDaemon(central);
  await cleanupEnv(env);
});

/** Runs one instance to its end and returns its console output. */
async function runToEnd(name: string, args: string[], extra: Record<string, unknown> = {}): Promise<{ log: string; instance: Instance }> {
  const url = (node as Daemon).url;
  const r = await api(url, 'POST', '/v1/instances', { name, image: 'alice/probe:latest', memory_mb: 32, autostart: true, args, ...extra });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const instance = await waitInstance(url, name, (i) => i.state === 'stopped', 30_000);
  const log = await instanceLog(url, name);
  await api(url, 'DELETE', `/v1/instances/${name}`);
  return { log, instance };
}

function results(log: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of log.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k && v) m.set(k, v);
  }
  return m;
}

test('row 17: kernel attack surface — Seccomp: 2, denied calls fail with EPERM (clone3 ENOSYS), nested user namespaces refused, CAP_NET_RAW dropped', async (t) => {
  if (!root) return t.skip('needs root');
  const calls = ['io_uring_setup', 'bpf', 'perf_event_open', 'userfaultfd', 'unshare_user', 'clone_newuser', 'mount', 'umount2', 'pivot_root', 'swapon', 'reboot',
    'settimeofday', 'clock_settime', 'open_by_handle_at', 'kexec_load', 'init_module', 'personality_bad', 'raw_socket', 'packet_socket'];
  const { log } = await runToEnd('surface', ['/bin/probe', 'seccomp_status', ...calls, 'clone3', 'fork', 'udp_socket', 'personality_query']);
  assert.match(log, /^Seccomp:\s+2$/m, log);
  const got = results(log);
  for (const c of calls) assert.equal(got.get(c), 'EPERM', `${c}:\n${log}`);
  assert.equal(got.get('clone3'), 'ENOSYS', 'clone3 falls back to clone in the C library');
  // What programs need still works.
  for (const c of ['fork', 'udp_socket', 'personality_query']) assert.equal(got.get(c), 'ok', `${c}:\n${log}`);
  // busybox's own unshare -U -r, as a tenant would try it.
  const u = await runToEnd('nested-userns', ['/bin/sh', '-c', '/bin/busybox unshare -U -r /bin/busybox id; echo "rc=$?"']);
  assert.match(u.log, /rc=1/, u.log);
  assert.doesNotMatch(u.log, /uid=0\(/, u.log);
});

test('row 16: shared kernel objects — keyring calls are refused in every instance, so no instance can add or find a key another one sees', async (t) => {
  if (!root) return t.skip('needs root');
  const a = await runToEnd('keys-alice', ['/bin/probe', 'add_key', 'keyctl', 'request_key']);
  const b = await runToEnd('keys-bob', ['/bin/probe', 'keyctl', 'request_key']);
  for (const [who, log] of [['alice', a.log], ['bob', b.log]] as const) {
    for (const [call, res] of results(log)) assert.equal(res, 'EPERM', `${who}: ${call}\n${log}`);
    assert.ok(results(log).size >= 2, log);
  }
});

/** A copy of the probe rootfs with device nodes and a fifo in it (as a hostile tenant would push it). */
function hostileRootfs(name: string): string {
  const dir = join(env.dir, name);
  cpSync(join(env.dir, 'rootfs'), dir, { recursive: true, verbatimSymlinks: true });
  mkdirSync(join(dir, 'dev'), { recursive: true });
  for (const [file, type, major, minor] of [['kmsg', 'c', '1', '11'], ['kvm', 'c', '10', '232'], ['loop5', 'b', '7', '5']] as const) {
    assert.equal(spawnSync('mknod', [join(dir, 'dev', file), type, major, minor]).status, 0);
  }
  assert.equal(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0);
  return dir;
}

for (const format of ['erofs', 'cpio'] as const) {
  test(`row 15: a pushed ${format.toUpperCase()} image holding device nodes (kmsg, kvm, a loop device) and a fifo is refused at admission with EINVAL naming the file`, async (t) => {
    if (!root) return t.skip('needs root');
    const url = (node as Daemon).url;
    const dir = hostileRootfs(`hostile-${format}`);
    // Our own CPIO writer leaves special files out, so the hostile CPIO comes from GNU cpio, as a tenant would make it.
    let how: 'erofs' | { initrd: string } = 'erofs';
    if (format === 'cpio') {
      const out = join(env.dir, 'hostile.cpio');
      const c = spawnSync('/bin/sh', ['-c', `cd '${dir}' && find . | cpio -o -H newc --quiet > '${out}'`], { encoding: 'utf8' });
      assert.equal(c.status, 0, c.stderr);
      how = { initrd: out };
    }
    await buildAndPush(env, dir, (central as Daemon).url, `alice/devices-${format}`, 'latest', ['/bin/probe', 'seccomp_status'], how);
    const r = await api(url, 'POST', '/v1/instances', { name: `devs-${format}`, image: `alice/devices-${format}:latest`, memory_mb: 32, autostart: true });
    const text = JSON.stringify(r.body);
    assert.equal(r.status, 400, text);
    assert.match(text, /"error":22/, text);
    assert.match(text, /its initrd holds a (character|block) device node at \\"\/dev\/(kmsg|kvm|loop5)\\"|its initrd holds a fifo at \\"\/fifo\\"/, text);
    const list = await api(url, 'GET', '/v1/instances');
    assert.doesNotMatch(JSON.stringify(list.body), new RegExp(`devs-${format}`));
  });
}

test('row 15: a running instance cannot open a host device — no such node in its /dev, its root is nodev,nosuid, and its device cgroup refuses kmsg/kvm even to host root', async (t) => {
  if (!root) return t.skip('needs root');
  const { log } = await runToEnd('no-devices', ['/bin/sh', '-c', 'ls /dev; grep " / / " /proc/self/mountinfo; cat /dev/kmsg; echo "kmsg rc=$?"; head -c 1 /dev/urandom >/dev/null; echo "urandom rc=$?"']);
  assert.match(log, /kmsg rc=1/, log);
  assert.match(log, /urandom rc=0/, log);
  assert.doesNotMatch(log, /\bkvm\b|\bloop/, log);
  const rootLine = log.split('\n').find((l) => l.includes(' / / ')) ?? '';
  assert.match(rootLine, /nosuid/, log);
  assert.match(rootLine, /nodev/, log);
  // The overlay's layers are named relative to the run's tmpfs: no host path of the node in the instance's mountinfo.
  assert.match(rootLine, /lowerdir=lower0,upperdir=upper,workdir=work/, log);
  // The device cgroup every instance group gets: a host-root process in it cannot open /dev/kmsg or /dev/kvm, /dev/null works.
  const layout = detectCgroupLayout();
  if (layout.version !== 1 || !layout.devices) return t.skip('no v1 devices hierarchy on this host');
  const cg = Cgroup.create('devices-probe', {}, { parent: env.cgroupParent });
  try {
    const procs = cg.joinDirs.map((d) => `${d}/cgroup.procs`).join(' ');
    const sh = spawnSync('/bin/sh', ['-c', `for f in ${procs}; do echo $$ > $f; done; for d in kmsg kvm null; do if [ -e /dev/$d ]; then head -c 0 /dev/$d 2>/dev/null; echo "$d $?"; fi; done`], { encoding: 'utf8' });
    assert.match(sh.stdout, /null 0/, sh.stdout + sh.stderr);
    assert.match(sh.stdout, /kmsg 1/, sh.stdout + sh.stderr);
  } finally {
    await cg.destroy();
  }
});
