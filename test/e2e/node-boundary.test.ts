// The tenant boundary of `micro` instances on a real `ukcd node` (issue 11; security cases
// 16, 17 and later rows in test/security/README.md). A static probe (fixtures/syscall-probe.c,
// compiled here) runs inside instances and reports what each call returned. Needs root and a
// C compiler (both in CI).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
