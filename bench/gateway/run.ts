/**
 * bench/gateway: the gateway's cost and scale-to-zero wake latency, on loopback.
 *
 *   npm run build && node dist/bench/gateway/run.js [--duration-ms 4000] [--concurrency 8] [--wakes 40]
 *
 * A real node (createNodeApi: lifecycle, services, gateway) runs apps as host
 * processes on 127.0.0.x (test/e2e/gateway-host-driver.ts — NOT the sandbox
 * runtime, so wake numbers measure the gateway + lifecycle path plus a process
 * spawn, not a micro-VM/sandbox boot). The load generator (loadgen.ts) runs in
 * a second process. Measured:
 *   - requests/s and p50/p99 straight to the instance (HTTP), through the
 *     gateway on port 80 (HTTP proxy) and on 443 (TLS terminated + proxy);
 *   - wake latency: instance in `standby` → first response byte, p50/p99, for a
 *     busybox httpd app and a Node.js app.
 * Writes bench/gateway/results.json.
 */
import { execFile } from 'node:child_process';
import http from 'node:http';
import { cpus } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
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

async function main(): Promise<void> {
  const durationMs = arg('duration-ms', 4000);
  const concurrency = arg('concurrency', 8);
  const wakes = arg('wakes', 40);
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
  const api = await createNodeApi({
    dataDir: join(dir, 'node'),
    runtime: new HostProcessDriver({ listenPort: 8080 }),
    images: resolver,
    catalog: new FakeCatalog(),
    gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) },
  });
  const services = [
    { port: 443, destination_port: 8080, handlers: ['http', 'tls'] },
    { port: 80, destination_port: 8080, handlers: ['http'] },
  ];
  try {
    // ---- throughput and latency -----------------------------------------
    const created = await call(api, 'POST', '/v1/instances', { image: 'bench/node:latest', service_group: { services }, timeout_s: 30 });
    const inst = created.data.instances![0]!;
    const fqdn = (inst.service_group as { domains: { fqdn: string }[] }).domains[0]!.fqdn;
    const ip = String((await call(api, 'GET', `/v1/instances/${String(inst.uuid)}`)).data.instances![0]!.private_ip);
    await sleep(300);
    const gw = api.gateway!;
    const base = { concurrency, durationMs };
    const direct = await load({ ...base, url: `http://${ip}:8080/` });
    const viaHttp = await load({ ...base, url: `http://127.0.0.1:${gw.address(80)!.port}/`, host: fqdn });
    const viaHttps = await load({ ...base, url: `https://127.0.0.1:${gw.address(443)!.port}/`, host: fqdn, ca: api.tls!.caCertPath });
    await call(api, 'DELETE', `/v1/instances/${String(inst.uuid)}`);

    // ---- wake latency -----------------------------------------------------
    const wake = async (image: string, rounds: number): Promise<{ samples: number; p50_ms: number; p99_ms: number; max_ms: number; failures: number }> => {
      const c = await call(api, 'POST', '/v1/instances', {
        image,
        service_group: { services },
        scale_to_zero: { policy: 'on', cooldown_time_ms: 50 },
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
      const r3 = (x: number): number => Math.round(x * 1000) / 1000;
      return { samples: samples.length, p50_ms: r3(percentile(samples, 50)), p99_ms: r3(percentile(samples, 99)), max_ms: r3(samples[samples.length - 1] ?? NaN), failures };
    };
    const wakeBusybox = await wake('bench/busybox:latest', wakes);
    const wakeNode = await wake('bench/node:latest', Math.max(5, Math.round(wakes / 2)));

    const overhead = (via: LoadResult): { p50_pct: number; rps_pct: number } => ({
      p50_pct: Math.round(((via.p50_ms - direct.p50_ms) / direct.p50_ms) * 1000) / 10,
      rps_pct: Math.round(((direct.rps - via.rps) / direct.rps) * 1000) / 10,
    });
    const results = {
      bench: 'gateway',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version, note: 'shared machine; loopback only' },
      settings: { concurrency, duration_ms: durationMs, wake_rounds: wakes, app: 'Node.js http hello (keep-alive)' },
      throughput: { direct_http: direct, gateway_http: viaHttp, gateway_https: viaHttps },
      overhead: { gateway_http: overhead(viaHttp), gateway_https: overhead(viaHttps) },
      wake: { busybox_httpd: wakeBusybox, node_app: wakeNode },
      targets: { gateway_overhead_p50_pct_max: 20, wake_p50_ms_max: 25 },
    };
    const out = join(here, '..', '..', '..', 'bench', 'gateway', 'results.json');
    writeFileSync(out, JSON.stringify(results, null, 2) + '\n');
    process.stdout.write(JSON.stringify(results, null, 2) + '\n');
  } finally {
    await api.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
