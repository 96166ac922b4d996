/**
 * A small closed-loop HTTP(S) load generator, run as its own process so the
 * measured server does not share its event loop:
 *
 *   node loadgen.js '{"url":"https://127.0.0.1:8443/","host":"x.local.localhost","ca":"/path/ca.crt","concurrency":8,"durationMs":4000}'
 *
 * Keep-alive connections, one request in flight per connection. Prints one
 * JSON line: requests, errors, requests/s and latency percentiles (ms).
 */
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';

export interface LoadSpec {
  url: string;
  host?: string;
  ca?: string;
  concurrency: number;
  durationMs: number;
  warmupMs?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50_ms: number;
  p90_ms: number;
  p99_ms: number;
  max_ms: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

async function main(spec: LoadSpec): Promise<LoadResult> {
  const u = new URL(spec.url);
  const secure = u.protocol === 'https:';
  const agent = secure
    ? new https.Agent({ keepAlive: true, maxSockets: spec.concurrency, ...(spec.ca ? { ca: readFileSync(spec.ca) } : {}) })
    : new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const lib = secure ? https : http;
  const headers = spec.host ? { host: spec.host } : {};
  const one = (): Promise<number> =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = lib.request(
        { host: u.hostname, port: u.port, path: u.pathname + u.search, agent, headers, ...(secure && spec.host ? { servername: spec.host } : {}) },
        (res) => {
          res.resume();
          res.on('end', () => (res.statusCode === 200 ? resolve(Number(process.hrtime.bigint() - t0) / 1e6) : reject(new Error(String(res.statusCode)))));
        },
      );
      req.on('error', reject);
      req.end();
    });
  const warmupEnd = Date.now() + (spec.warmupMs ?? 500);
  const end = warmupEnd + spec.durationMs;
  const lat: number[] = [];
  let errors = 0;
  const worker = async (): Promise<void> => {
    while (Date.now() < end) {
      try {
        const ms = await one();
        if (Date.now() >= warmupEnd) lat.push(ms);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: spec.concurrency }, () => worker()));
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
