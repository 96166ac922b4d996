/**
 * bench/gateway: the gateway's cost and scale-to-zero wake latency, on loopback.
 *
 *   npm run build && node dist/bench/gateway/run.js [--rounds 3] [--duration-ms 3000] [--rate 1000]
 *       [--paced-connections 32] [--concurrency 32] [--wakes 30] [--load-only | --wake-only] [--no-write]
 *
 * A real node (createNodeApi: lifecycle, services, gateway) runs apps as host
 * processes on 127.0.0.x (test/e2e/gateway-host-driver.ts — NOT the sandbox
 * runtime, so wake numbers measure the gateway + lifecycle path plus a process
 * spawn or a cgroup thaw, not a sandbox boot). The load generator
 * (loadgen.ts) runs in a second process. Three load shapes, each straight to
 * the instance (HTTP), through the gateway's port 80 (HTTP proxy) and its 443
 * (TLS terminated + proxy), run back to back in a rotating order, `rounds`
 * times (the machine is shared: a ratio of two adjacent runs is steadier than
 * either figure):
 *   - unloaded:  closed loop, 1 connection — the bare round trip a hop adds;
 *   - paced:     open loop at `rate` req/s on up to 32 connections, well below
 *                saturation — latency without queueing (the p50/p99 target);
 *   - saturated: closed loop, 32 connections — requests/s at saturation. On 2
 *                cores this is a CPU contest: the direct case runs 2 processes
 *                (load generator, app), the gateway case 3, so its req/s loss is
 *                mostly the gateway's CPU per request, which is reported too.
 * Wake: instance in `standby` → first response byte, for a busybox httpd app
 * and a Node.js app, stateless (process restarted) and stateful (cgroup
 * frozen in standby, thawed on wake).
 * Writes bench/gateway/results.json.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import { cpus } from 'node:os';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createNodeApi, type NodeApi } from '../../src/node/index.js';
import { FakeCatalog, FakeResolver } from '../../src/node/test-doubles.test-support.js';
import { HELLO_APP, HostProcessDriver } from '../../test/e2e/gateway-host-driver.js';
import { percentile, type LoadResult, type LoadSpec } from './loadgen.js';

const run = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
}

async function load(spec: LoadSpec): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [join(here, 'loadgen.js'), JSON.stringify(spec)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

type Inst = Record<string, unknown>;
async function call(api: NodeApi, method: string, url: string, body?: unknown): Promise<{ data: Record<string, Inst[]> }> {
  const r = await api.handle({ method, url, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const parsed = JSON.parse(r.body) as { status: string; message?: string; data: Record<string, Inst[]> };
  if (parsed.status !== 'success') throw new Error(`${method} ${url}: ${parsed.message ?? r.body}`);
  return parsed;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** CPU time (user + system, µs) of a process, from /proc/<pid>/stat. */
function procCpuUs(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
    return (ticks * 1e6) / CLOCK_TICKS_PER_S;
  } catch {
    return NaN;
  }
}
const CLOCK_TICKS_PER_S = 100;

/** Pid of the (single) running app process whose command line mentions `marker`. */
function appPid(marker: string): number {
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e) || Number(e) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').includes(marker)) return Number(e);
    } catch {
      // gone
    }
  }
  return 0;
}

const loadavg = (): number => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

interface Measured extends LoadResult {
  /** CPU of the node process (gateway + node API; idle otherwise) per request, µs. */
  gateway_cpu_us_per_req: number;
  app_cpu_us_per_req: number;
  loadavg_1m: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const r3 = (x: number): number => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const durationMs = arg('duration-ms', 3000);
  const rounds = arg('rounds', 3);
  const rate = arg('rate', 1000);
  const pacedConnections = arg('paced-connections', 32);
  const saturateConcurrency = arg('concurrency', 32);
  const wakes = arg('wakes', 30);
  const only = process.argv.includes('--wake-only') ? 'wake' : process.argv.includes('--load-only') ? 'load' : 'all';
  const dir = mkdtempSync(join(tmpdir(), 'ukc-bench-gw-'));
  const app = join(dir, 'app.cjs');
  writeFileSync(app, HELLO_APP);
  const www = join(dir, 'www');
  mkdirSync(www);
  writeFileSync(join(www, 'index.html'), 'hello from busybox\n');
  const resolver = new FakeResolver();
  resolver.add('bench/node:latest', { digestRef: `bench/node@sha256:${'1'.repeat(64)}`, config: { Cmd: [process.execPath, app], Env: ['PORT=8080'] } });
  resolver.add('bench/busybox:latest', {
    digestRef: `bench/busybox@sha256:${'2'.repeat(64)}`,
    config: { Cmd: ['busybox', 'httpd', '-f', '-p', '{{ip}}:8080', '-h', www] },
  });
  const driver = new HostProcessDriver({ listenPort: 8080 });
  const api = await createNodeApi({
    dataDir: join(dir, 'node'),
    runtime: driver,
    images: resolver,
    catalog: new FakeCatalog(),
    gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) },
    // The bench polls instance state in tight loops as one tenant: the per-account
    // request rate limit would only measure itself here.
    rateLimit: false,
  });
  const services = [
    { port: 443, destination_port: 8080, handlers: ['http', 'tls'] },
    { port: 80, destination_port: 8080, handlers: ['http'] },
  ];
  const gw = api.gateway!;
  try {
    // ---- latency (paced, unloaded) and throughput (saturated) --------------
    type Target = 'direct_http' | 'gateway_http' | 'gateway_https';
    type Mode = 'unloaded' | 'paced' | 'saturated';
    const targets: Target[] = ['direct_http', 'gateway_http', 'gateway_https'];
    const modes: Record<Mode, Pick<LoadSpec, 'concurrency' | 'rate'>> = {
      unloaded: { concurrency: 1 },
      paced: { concurrency: pacedConnections, rate },
      saturated: { concurrency: saturateConcurrency },
    };
    const runs: Record<Mode, Record<Target, Measured[]>> = {
      unloaded: { direct_http: [], gateway_http: [], gateway_https: [] },
      paced: { direct_http: [], gateway_http: [], gateway_https: [] },
      saturated: { direct_http: [], gateway_http: [], gateway_https: [] },
    };
    if (only !== 'wake') {
      const created = await call(api, 'POST', '/v1/instances', { image: 'bench/node:latest', service_group: { services }, timeout_s: 30 });
      const inst = created.data.instances![0]!;
      const fqdn = (inst.service_group as { domains: { fqdn: string }[] }).domains[0]!.fqdn;
      const ip = String((await call(api, 'GET', `/v1/instances/${String(inst.uuid)}`)).data.instances![0]!.private_ip);
      await sleep(300);
      const pid = appPid(app);
      const urls: Record<Target, Omit<LoadSpec, 'concurrency' | 'durationMs'>> = {
        direct_http: { url: `http://${ip}:8080/` },
        gateway_http: { url: `http://127.0.0.1:${gw.address(80)!.port}/`, host: fqdn },
        gateway_https: { url: `https://127.0.0.1:${gw.address(443)!.port}/`, host: fqdn, ca: api.tls!.caCertPath },
      };
      for (let round = 0; round < rounds; round++) {
        for (const mode of Object.keys(modes) as Mode[]) {
          // Rotate the order each round so no target always runs first (or right after another).
          for (let k = 0; k < targets.length; k++) {
            const target = targets[(k + round) % targets.length]!;
            const cpu0 = process.cpuUsage();
            const app0 = procCpuUs(pid);
            const r = await load({ ...modes[mode], durationMs, warmupMs: 300, ...urls[target] });
            const cpu = process.cpuUsage(cpu0);
            const appUs = procCpuUs(pid) - app0;
            // The warmup's requests are not counted in r.requests; scale by the measured share of time.
            const share = durationMs / (durationMs + 300);
            const perReq = (us: number): number => Math.round((us * share) / Math.max(1, r.requests));
            runs[mode][target].push({
              ...r,
              gateway_cpu_us_per_req: target === 'direct_http' ? 0 : perReq(cpu.user + cpu.system),
              app_cpu_us_per_req: perReq(appUs),
              loadavg_1m: loadavg(),
            });
            process.stderr.write(`round ${round} ${mode} ${target}: ${r.rps} req/s p50 ${r.p50_ms} p99 ${r.p99_ms}\n`);
          }
        }
      }
      await call(api, 'DELETE', `/v1/instances/${String(inst.uuid)}`);
    }

    // ---- wake latency -----------------------------------------------------
    const wake = async (image: string, stateful: boolean, rounds: number): Promise<Record<string, number>> => {
      const c = await call(api, 'POST', '/v1/instances', {
        image,
        service_group: { services },
        scale_to_zero: { policy: 'on', stateful, cooldown_time_ms: 50 },
        timeout_s: 30,
      });
      const i = c.data.instances![0]!;
      const host = (i.service_group as { domains: { fqdn: string }[] }).domains[0]!.fqdn;
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      const port = gw.address(80)!.port;
      const firstByte = (): Promise<number> =>
        new Promise((resolve, reject) => {
          const t0 = process.hrtime.bigint();
          const req = http.request({ host: '127.0.0.1', port, path: '/', headers: { host }, agent }, (res) => {
            const t = Number(process.hrtime.bigint() - t0) / 1e6;
            res.resume();
            res.on('end', () => (res.statusCode === 200 ? resolve(t) : reject(new Error(`status ${res.statusCode}`))));
          });
          req.on('error', reject);
          req.end();
        });
      await firstByte().catch(() => undefined); // the keep-alive connection to the gateway is open before timing
      const samples: number[] = [];
      let failures = 0;
      for (let n = 0; n < rounds; n++) {
        let state = '';
        for (let k = 0; k < 2000 && state !== 'standby'; k++) {
          await sleep(5);
          state = String((await call(api, 'GET', `/v1/instances/${String(i.uuid)}`)).data.instances![0]!.state);
        }
        if (state !== 'standby') throw new Error(`instance did not reach standby (${state})`);
        try {
          samples.push(await firstByte());
        } catch {
          failures++;
        }
      }
      agent.destroy();
      await call(api, 'DELETE', `/v1/instances/${String(i.uuid)}`);
      samples.sort((a, b) => a - b);
      return { samples: samples.length, p50_ms: r3(percentile(samples, 50)), p90_ms: r3(percentile(samples, 90)), p99_ms: r3(percentile(samples, 99)), max_ms: r3(samples[samples.length - 1] ?? NaN), failures, loadavg_1m: loadavg() };
    };
    const wakeResults: Record<string, Record<string, number>> = {};
    if (only !== 'load') {
      for (const stateful of [false, true]) {
        const kind = stateful ? 'stateful' : 'stateless';
        wakeResults[`busybox_httpd_${kind}`] = await wake('bench/busybox:latest', stateful, wakes);
        wakeResults[`node_app_${kind}`] = await wake('bench/node:latest', stateful, Math.max(5, Math.round(wakes / 2)));
        process.stderr.write(`wake ${kind}: busybox p50 ${wakeResults[`busybox_httpd_${kind}`]!.p50_ms} ms, node p50 ${wakeResults[`node_app_${kind}`]!.p50_ms} ms\n`);
      }
    }

    // Per mode and target: the median over rounds of each figure; overhead = median over rounds of
    // (via / direct − 1) with via and direct measured back to back in the same round.
    const summary: Record<string, Record<string, Record<string, number>>> = {};
    const overhead: Record<string, Record<string, Record<string, number>>> = {};
    if (only !== 'wake') {
      for (const mode of Object.keys(modes) as Mode[]) {
        summary[mode] = {};
        overhead[mode] = {};
        for (const target of targets) {
          const rs = runs[mode][target];
          const pick = (f: (m: Measured) => number): number => r3(median(rs.map(f)));
          summary[mode]![target] = {
            rps: pick((m) => m.rps),
            p50_ms: pick((m) => m.p50_ms),
            p99_ms: pick((m) => m.p99_ms),
            errors: rs.reduce((a, m) => a + m.errors, 0),
            gateway_cpu_us_per_req: pick((m) => m.gateway_cpu_us_per_req),
            app_cpu_us_per_req: pick((m) => m.app_cpu_us_per_req),
            loadgen_cpu_us_per_req: pick((m) => m.loadgen_cpu_us_per_req),
          };
          if (target === 'direct_http') continue;
          const d = runs[mode].direct_http;
          const pct = (f: (m: Measured) => number, sign: 1 | -1): number =>
            Math.round(median(rs.map((m, k) => sign * (f(m) / f(d[k]!) - 1))) * 1000) / 10;
          overhead[mode]![target] = { p50_pct: pct((m) => m.p50_ms, 1), p99_pct: pct((m) => m.p99_ms, 1), rps_loss_pct: pct((m) => m.rps, -1) };
        }
      }
    }
    const results = {
      bench: 'gateway',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, note: 'shared machine; loopback only' },
      settings: {
        rounds,
        duration_ms: durationMs,
        unloaded: modes.unloaded,
        paced: modes.paced,
        saturated: modes.saturated,
        wake_rounds: wakes,
        app: 'Node.js http hello (keep-alive)',
      },
      summary,
      overhead,
      runs: only === 'wake' ? undefined : runs,
      wake: wakeResults,
      targets: { gateway_overhead_p50_pct_max: 20, wake_p50_ms_max: 25 },
    };
    const out = process.argv.includes('--no-write') ? undefined : join(here, '..', '..', '..', 'bench', 'gateway', 'results.json');
    if (out !== undefined) writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    process.stdout.write(JSON.stringify({ summary, overhead, wake: wakeResults }, null, 2) + '\n');
  } finally {
    await api.close();
    await sleep(100); // the apps' freezer groups are removed on their exit
    driver.removeFreezerParent();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
