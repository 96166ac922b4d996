/**
 * A small HTTP(S) load generator, run as its own process so the measured
 * server does not share its event loop:
 *
 *   node loadgen.js '{"url":"https://127.0.0.1:8443/","host":"x.local.localhost","ca":"/path/ca.crt","concurrency":8,"durationMs":4000}'
 *
 * Two modes:
 *  - closed loop (no `rate`): `concurrency` keep-alive connections, one request
 *    in flight on each, sent back to back. This measures throughput at
 *    saturation; its latency is mostly queueing (p50 ≈ concurrency / rate).
 *  - open loop (`rate` req/s): requests are scheduled at fixed times and sent
 *    on up to `concurrency` keep-alive connections; latency counts from the
 *    scheduled time, so a stalled server is charged for the requests it
 *    delayed (no coordinated omission). At a rate well below saturation this
 *    measures the per-request latency a hop adds.
 *
 * Prints one JSON line: requests, errors, requests/s, latency percentiles (ms)
 * and this process's own CPU time per request.
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

export interface LoadSpec {
  url: string;
  host?: string;
  ca?: string;
  /** Connections (closed loop: requests in flight). */
  concurrency: number;
  durationMs: number;
  warmupMs?: number;
  /** Open loop at this many requests/s; absent = closed loop. */
  rate?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
  /** CPU time (user + system) of the load generator per measured request, µs. */
  loadgen_cpu_us_per_req: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Open-loop scheduling tick; requests due by now are all sent on each tick. */
const TICK_MS = 1;

async function main(spec: LoadSpec): Promise<LoadResult> {
  const u = new URL(spec.url);
  const secure = u.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: spec.concurrency, ...(spec.ca ? { ca: readFileSync(spec.ca) } : {}) })
    : new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const lib = secure ? https : http;
  const headers = spec.host ? { host: spec.host } : {};
  const options = { host: u.hostname, port: u.port, path: u.pathname + u.search, agent, headers, ...(secure && spec.host ? { servername: spec.host } : {}) };
  /** One request; resolves with the time its response ended (hrtime ns). */
  const one = (): Promise<bigint> =>
    new Promise((resolve, reject) => {
      const req = lib.request(options, (res) => {
        res.resume();
        res.on('end', () => (res.statusCode === 200 ? resolve(process.hrtime.bigint()) : reject(new Error(String(res.statusCode)))));
      });
      req.on('error', reject);
      req.end();
    });
  const warmupMs = spec.warmupMs ?? 500;
  const start = process.hrtime.bigint();
  const warmupEnd = start + BigInt(warmupMs) * 1_000_000n;
  const end = warmupEnd + BigInt(spec.durationMs) * 1_000_000n;
  const lat: number[] = [];
  let errors = 0;
  let cpuAtWarmupEnd: NodeJS.CpuUsage | undefined;
  const cpuMark = setTimeout(() => (cpuAtWarmupEnd = process.cpuUsage()), warmupMs);
  const record = (scheduled: bigint, done: bigint): void => {
    if (scheduled >= warmupEnd && scheduled < end) lat.push(Number(done - scheduled) / 1e6);
  };
  if (spec.rate === undefined) {
    const worker = async (): Promise<void> => {
      while (process.hrtime.bigint() < end) {
        const t0 = process.hrtime.bigint();
        try {
          record(t0, await one());
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: spec.concurrency }, () => worker()));
  } else {
    const intervalNs = BigInt(Math.round(1e9 / spec.rate));
    const pending = new Set<Promise<void>>();
    let next = start;
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const now = process.hrtime.bigint();
        for (; next <= now && next < end; next += intervalNs) {
          const scheduled = next;
          const p: Promise<void> = one().then(
            (done) => record(scheduled, done),
            () => {
              errors++;
            },
          );
          pending.add(p);
          void p.finally(() => pending.delete(p));
        }
        if (next >= end) resolve();
        else setTimeout(tick, TICK_MS);
      };
      tick();
    });
    await Promise.all([...pending]);
  }
  clearTimeout(cpuMark);
  const cpu = process.cpuUsage(cpuAtWarmupEnd);
  agent.destroy();
  lat.sort((a, b) => a - b);
  const r3 = (x: number): number => Math.round(x * 1000) / 1000;
  return {
    requests: lat.length,
    errors,
    rps: Math.round(lat.length / (spec.durationMs / 1000)),
    p50_ms: r3(percentile(lat, 50)),
    p90_ms: r3(percentile(lat, 90)),
    p99_ms: r3(percentile(lat, 99)),
    max_ms: r3(lat[lat.length - 1] ?? NaN),
    loadgen_cpu_us_per_req: Math.round((cpu.user + cpu.system) / Math.max(1, lat.length)),
  };
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].replace(/^.*\//, ''))) {
  const spec = JSON.parse(process.argv[2] ?? '{}') as LoadSpec;
  main(spec).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (err: unknown) => {
      process.stderr.write(String(err) + '\n');
      process.exit(1);
    },
  );
}
