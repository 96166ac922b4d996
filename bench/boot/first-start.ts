/**
 * bench/boot first start: the time from `POST /v1/instances` to the instance's
 * page being served, on a node that has never seen the image, for the same image
 * uncompressed (as built) and re-encoded by `skopeo copy` as gzip and zstd. It
 * covers pull + decompress + EROFS mount (or CPIO unpack) + boot + first HTTP
 * answer. Every start uses a fresh node home, so nothing is cached.
 *
 *   node dist/bench/boot/first-start.js [--rounds 3] [--payload-mb 32] [--format erofs|cpio] [--out FILE]
 *
 * `--payload-mb` adds a file of that size to the rootfs (half random, half
 * repeated text, so compression has something to do and something to skip).
 */
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { promisify } from 'node:util';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, fetchText, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon } from '../../test/e2e/node-support.js';

const run = promisify(execFile);
const HTTPD = ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'];

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)] as number;
}

async function layerInfo(host: string, ref: string): Promise<{ mediaType: string; size: number }[]> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/${ref}`]);
  return (JSON.parse(stdout) as { layers: { mediaType: string; size: number }[] }).layers.map((l) => ({ mediaType: l.mediaType, size: l.size }));
}

/** One first start on a fresh node: ms from the create request to the page answering. */
async function firstStart(centralUrl: string, image: string, page: string): Promise<number> {
  const env = newEnv('bench-first');
  let node: Daemon | undefined;
  try {
    node = await startNode(env, centralUrl, '127.0.0.1:0', ['--no-auth']);
    const t0 = performance.now();
    const r = await api(node.url, 'POST', '/v1/instances', { name: 'first', image, memory_mb: 64, autostart: true, timeout_s: 120 });
    if (r.status !== 200) throw new Error(`${image}: ${JSON.stringify(r.body)}`);
    const running = await waitInstance(node.url, 'first', (i) => i.state === 'running' && typeof i.private_ip === 'string', 120_000);
    const got = await fetchText(`http://${running.private_ip as string}:8080/`, 60_000);
    const ms = performance.now() - t0;
    if (got !== page) throw new Error(`${image}: served ${JSON.stringify(got.slice(0, 80))}`);
    return ms;
  } finally {
    await stopDaemon(node);
    await cleanupEnv(env);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      rounds: { type: 'string', default: '3' },
      'payload-mb': { type: 'string', default: '32' },
      format: { type: 'string', default: 'erofs' },
      out: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log('usage: node dist/bench/boot/first-start.js [--rounds N=3] [--payload-mb N=32] [--format erofs|cpio] [--out FILE]');
    return;
  }
  const format = values.format === 'cpio' ? 'cpio' : 'erofs';
  const env = newEnv('bench-first-central');
  let central: Daemon | undefined;
  try {
    central = await startCentral(env);
    const port = new URL(central.url).port;
    const page = 'first start\n';
    const rootfs = busyboxRootfs(env.dir, page);
    const half = Number(values['payload-mb']) * 512 * 1024;
    writeFileSync(join(rootfs, 'payload'), Buffer.concat([randomBytes(half), Buffer.alloc(half, 'ukc first start bench ')]));
    await buildAndPush(env, rootfs, central.url, 'alice/httpd', 'latest', HTTPD, format);
    // Each copy names the registry by a host spelling skopeo has not met in this run,
    // so it re-encodes instead of mounting the blob it knows (see test/e2e/node-compressed.test.ts).
    const variants = [
      { name: 'uncompressed', image: 'alice/httpd:latest', ref: `127.0.0.1:${port}`, path: 'alice/httpd:latest' },
      { name: 'gzip', image: 'bob/httpd-gzip:latest', ref: `localhost:${port}`, path: 'bob/httpd-gzip:latest', copy: [] as string[] },
      { name: 'zstd', image: 'bob/httpd-zstd:latest', ref: `127.0.0.1:${port}`, path: 'bob/httpd-zstd:latest', copy: ['--dest-compress-format', 'zstd'] },
    ];
    for (const v of variants) {
      if (v.copy === undefined) continue;
      await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...v.copy, `docker://localhost:${port}/alice/httpd:latest`, `docker://${v.ref}/${v.path}`]);
    }
    const results: Record<string, { layers: { mediaType: string; size: number }[]; first_start_ms: number[]; median_ms: number }> = {};
    for (const v of variants) results[v.name] = { layers: await layerInfo(v.ref, v.path), first_start_ms: [], median_ms: NaN };
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const v of variants) (results[v.name] as { first_start_ms: number[] }).first_start_ms.push(+(await firstStart(central.url, v.image, page)).toFixed(1));
    }
    for (const r of Object.values(results)) r.median_ms = median(r.first_start_ms);
    const result = {
      benchmark: 'boot-first-start',
      date: new Date().toISOString(),
      machine: { cpus: (await import('node:os')).cpus().length, kernel: (await import('node:os')).release() },
      format,
      payload_mib: Number(values['payload-mb']),
      variants: results,
    };
    const json = JSON.stringify(result, null, 2);
    console.log(json);
    console.log('\n| image | layer bytes | first start, median ms |\n|---|---|---|');
    for (const [name, r] of Object.entries(results)) console.log(`| ${name} | ${r.layers.reduce((a, l) => a + l.size, 0)} | ${r.median_ms} |`);
    const out = values.out ?? join(process.cwd(), 'bench', 'results', `boot-first-start-${result.date.slice(0, 10)}.json`);
    mkdirSync(join(out, '..'), { recursive: true });
    writeFileSync(out, json + '\n');
  } finally {
    await stopDaemon(central);
    await cleanupEnv(env);
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
