/**
 * bench/boot: boot_time_us and net_time_us of the busybox httpd image on a real
 * `ukcd node` (sequential, then 50 at once), the node's RSS with many idle
 * instances, and `runc run` / `podman run` of the same rootfs as peers.
 *
 *   node dist/bench/boot/run.js [--seq 20] [--parallel 50] [--idle 500] [--peer-runs 10] [--out FILE]
 *
 * Peer timing: from spawning the tool to (boot) the tool reporting the container
 * started (`runc run -d` returning; podman: the container's pid appearing) and (net)
 * a LISTEN socket on a non-loopback address in the container's netns. ukc's figures
 * are the node's own boot_time_us / net_time_us (from the driver being invoked),
 * with the node's default warm pools (8 ready network namespaces, 8 pre-started
 * launchers); starts beyond them build on demand. UKC_BOOT_TRACE=1 makes the
 * node print per-start phase marks; they are saved to /tmp/ukc-boot-trace.txt.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, existsSync, cpSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon, type Instance } from '../../test/e2e/node-support.js';
import { hasNonLoopbackListener } from '../../src/node/runtime/micro.js';

const HTTPD = ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'];

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))] as number;
}

function summary(values: number[]): { n: number; p50: number; p99: number } {
  return { n: values.length, p50: pct(values, 50), p99: pct(values, 99) };
}

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

function listening(pid: number): boolean {
  try {
    return hasNonLoopbackListener(readFileSync(`/proc/${pid}/net/tcp`, 'utf8'), false) || hasNonLoopbackListener(readFileSync(`/proc/${pid}/net/tcp6`, 'utf8'), true);
  } catch {
    return false;
  }
}

async function pollUntil(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (pred()) return true;
    await new Promise((r) => setTimeout(r, 1));
  }
  return false;
}

async function ukcRun(node: Daemon, count: number, name: string): Promise<{ boot: number[]; net: number[] }> {
  const r = await api(node.url, 'POST', '/v1/instances', { name, image: 'alice/httpd:latest', memory_mb: 32, replicas: count - 1, autostart: true, timeout_s: 120 });
  if (r.status !== 200) throw new Error(JSON.stringify(r.body));
  const made = r.body.data?.instances as Instance[];
  const boot: number[] = [];
  const net: number[] = [];
  for (const m of made) {
    const i = await waitInstance(node.url, m.name, (x) => typeof x.net_time_us === 'number', 60_000);
    boot.push(i.boot_time_us as number);
    net.push(i.net_time_us as number);
  }
  return { boot, net };
}

async function deleteAll(node: Daemon): Promise<void> {
  const r = await api(node.url, 'GET', '/v1/instances');
  const list = (r.body.data?.instances as Instance[] | undefined) ?? [];
  for (let i = 0; i < list.length; i += 50) {
    await api(node.url, 'DELETE', '/v1/instances', list.slice(i, i + 50).map((x) => ({ uuid: x.uuid })));
  }
}

async function runcRuns(bundleRoot: string, rootfs: string, runs: number): Promise<{ boot: number[]; net: number[] } | { skipped: string }> {
  if (runs === 0) return { skipped: '--peer-runs 0' };
  if (spawnSync('runc', ['--version']).status !== 0) return { skipped: 'runc not installed' };
  const bundle = join(bundleRoot, 'bundle');
  mkdirSync(bundle, { recursive: true });
  cpSync(rootfs, join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  spawnSync('runc', ['spec'], { cwd: bundle });
  const spec = JSON.parse(readFileSync(join(bundle, 'config.json'), 'utf8')) as { process: { args: string[]; terminal: boolean }; root: { readonly: boolean } };
  spec.process.args = HTTPD;
  spec.process.terminal = false;
  spec.root.readonly = false;
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(spec));
  const boot: number[] = [];
  const net: number[] = [];
  for (let i = 0; i < runs; i++) {
    const id = `ukcbench-${process.pid}-${i}`;
    const pidFile = join(bundle, `${id}.pid`);
    const t0 = process.hrtime.bigint();
    const child = spawn('runc', ['run', '-d', '--pid-file', pidFile, id], { cwd: bundle, stdio: 'ignore' });
    await new Promise((r) => child.on('exit', r));
    const t1 = process.hrtime.bigint();
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await pollUntil(() => listening(pid), 10_000);
    const t2 = process.hrtime.bigint();
    boot.push(Number(t1 - t0) / 1000);
    net.push(Number(t2 - t0) / 1000);
    spawnSync('runc', ['delete', '-f', id]);
  }
  return { boot, net };
}

async function podmanRuns(dir: string, rootfs: string, runs: number): Promise<{ boot: number[]; net: number[] } | { skipped: string }> {
  if (runs === 0) return { skipped: '--peer-runs 0' };
  if (spawnSync('podman', ['--version']).status !== 0) return { skipped: 'podman not installed' };
  const common = ['--root', join(dir, 'podman-root'), '--runroot', join(dir, 'podman-run'), '--storage-driver', 'vfs', '--runtime', 'runc'];
  const boot: number[] = [];
  const net: number[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `ukcbench${process.pid}x${i}`;
    const t0 = process.hrtime.bigint();
    const child = spawn('podman', [...common, 'run', '-d', '--name', name, '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', '--rootfs', rootfs, ...HTTPD], { stdio: 'ignore' });
    const code = await new Promise((r) => child.on('exit', r));
    const t1 = process.hrtime.bigint();
    if (code !== 0) return { skipped: `podman run exited ${String(code)}` };
    const inspect = spawnSync('podman', [...common, 'inspect', '-f', '{{.State.Pid}}', name], { encoding: 'utf8' });
    const pid = Number(inspect.stdout.trim());
    // podman's own network stack (none here) cannot show a non-loopback listener; count any listener.
    await pollUntil(() => {
      try {
        return /\s0A\s/.test(readFileSync(`/proc/${pid}/net/tcp`, 'utf8')) || /\s0A\s/.test(readFileSync(`/proc/${pid}/net/tcp6`, 'utf8'));
      } catch {
        return false;
      }
    }, 10_000);
    const t2 = process.hrtime.bigint();
    boot.push(Number(t1 - t0) / 1000);
    net.push(Number(t2 - t0) / 1000);
    spawnSync('podman', [...common, 'rm', '-f', name]);
  }
  return { boot, net };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seq: { type: 'string', default: '20' },
      parallel: { type: 'string', default: '50' },
      idle: { type: 'string', default: '500' },
      'peer-runs': { type: 'string', default: '10' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(
      'usage: node dist/bench/boot/run.js [--seq N=20] [--parallel N=50] [--idle N=500] [--peer-runs N=10] [--out FILE]\n' +
        '  --seq       sequential starts (one instance at a time)\n' +
        '  --parallel  instances created at once (one request with replicas)\n' +
        '  --idle      instances left running to measure the node RSS (0 skips)\n' +
        '  --peer-runs runc / podman runs each (0 skips the peers)\n' +
        '  --out       result JSON (default bench/results/boot-<date>.json)\n' +
        'UKC_BOOT_TRACE=1 saves per-start phase marks to /tmp/ukc-boot-trace.txt',
    );
    return;
  }
  const env = newEnv('bench-boot');
  let central: Daemon | undefined;
  let node: Daemon | undefined;
  try {
    central = await startCentral(env);
    const rootfs = busyboxRootfs(env.dir, 'bench\n');
    await buildAndPush(env, rootfs, central.url, 'alice/httpd', 'latest', HTTPD);
    // One tenant measuring the runtime: no accounts, so no quotas or rate limits in the way.
    node = await startNode(env, central.url, '127.0.0.1:0', ['--no-auth']);
    // Warm-up: the first create pulls the image and mounts the EROFS rootfs.
    await ukcRun(node, 1, 'warm');
    await deleteAll(node);

    const seqBoot: number[] = [];
    const seqNet: number[] = [];
    for (let i = 0; i < Number(values.seq); i++) {
      const r = await ukcRun(node, 1, `seq${i}`);
      seqBoot.push(...r.boot);
      seqNet.push(...r.net);
      await deleteAll(node);
    }
    const par = await ukcRun(node, Number(values.parallel), 'par');
    await deleteAll(node);

    const idleCount = Number(values.idle);
    const rssBefore = rssKiB(node.child.pid as number);
    const availBefore = memAvailableKiB();
    const idleStarted = Date.now();
    // Batches small enough for one request to finish well inside the client's 60 s timeout on a busy machine.
    const batch = 25;
    for (let made = 0; made < idleCount; made += batch) {
      const n = Math.min(batch, idleCount - made);
      const t = Date.now();
      const r = await api(node.url, 'POST', '/v1/instances', { name: `idle${made}`, image: 'alice/httpd:latest', memory_mb: 16, replicas: n - 1, autostart: true, timeout_s: 300 });
      if (r.status !== 200) throw new Error(JSON.stringify(r.body).slice(0, 500));
      console.error(`idle: ${made + n} created (this batch ${Date.now() - t} ms)`);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const running = ((await api(node.url, 'GET', '/v1/instances')).body.data?.instances as Instance[]).filter((i) => i.state === 'running').length;
    const rssIdle = rssKiB(node.child.pid as number);
    const idleMs = Date.now() - idleStarted;
    // Host memory the idle instances take (all their processes, cgroups, tmpfs, page tables):
    // MemAvailable before and after, per running instance.
    const hostKiBPerInstance = running > 0 ? (availBefore - memAvailableKiB()) / running : 0;
    await deleteAll(node);

    const runc = await runcRuns(env.dir, rootfs, Number(values['peer-runs']));
    const podman = await podmanRuns(env.dir, rootfs, Number(values['peer-runs']));

    const result = {
      benchmark: 'boot',
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, kernel: (await import('node:os')).release() },
      ukc: {
        sequential: { boot_time_us: summary(seqBoot), net_time_us: summary(seqNet) },
        parallel: { count: Number(values.parallel), boot_time_us: summary(par.boot), net_time_us: summary(par.net) },
        idle: {
          requested: idleCount,
          running,
          created_in_ms: idleMs,
          node_rss_mib_before: +(rssBefore / 1024).toFixed(1),
          node_rss_mib: +(rssIdle / 1024).toFixed(1),
          host_mib_per_instance: +(hostKiBPerInstance / 1024).toFixed(2),
        },
      },
      runc: 'skipped' in runc ? runc : { boot_us: summary(runc.boot), net_us: summary(runc.net) },
      podman: 'skipped' in podman ? podman : { boot_us: summary(podman.boot), net_us: summary(podman.net) },
    };
    // UKC_BOOT_TRACE=1 (inherited by the node) makes the node print per-start phase marks; keep them beside the result.
    if (process.env['UKC_BOOT_TRACE'] === '1') {
      writeFileSync('/tmp/ukc-boot-trace.txt', node.output().split('\n').filter((l) => l.includes('[boot-trace]')).join('\n') + '\n');
    }
    for (const [peer, r] of Object.entries({ runc, podman })) if ('skipped' in r) console.error(`peer ${peer} skipped: ${r.skipped}`);
    const json = JSON.stringify(result, null, 2);
    console.log(json);
    const out = values.out ?? join(process.cwd(), 'bench', 'results', `boot-${result.date.slice(0, 10)}.json`);
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, json + '\n');
    if (!existsSync(out)) throw new Error('result not written');
  } finally {
    if (node) await deleteAll(node).catch(() => undefined);
    await stopDaemon(node);
    await stopDaemon(central);
    await cleanupEnv(env);
  }
}

/** The host's MemAvailable, KiB. */
function memAvailableKiB(): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) : 0;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
