/**
 * Registry benchmark: starts the CNCF distribution registry and ukc's
 * registry side by side on loopback and measures, in one run, monolithic
 * push and pull of a large random blob, a skopeo push of an OCI layout
 * holding it, many small blobs pushed by concurrent clients, and each
 * server's memory. Reports medians and ukc/distribution ratios (the machine
 * is shared and noisy: ratios from one run are what to compare).
 *
 * Usage: npm run build && npm run bench:registry -- [--runs 3] [--big] …
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { procStatusKiB, rssSampler, startDockerRegistry, startUkcRegistry, type RunningRegistry } from '../lib/servers.js';
import { fileBody, pullBlob, pushMonolithic, repeatingBody, request } from './lean-http.js';
import { BenchUsageError, formatTable, parseBenchArgs, summarize, USAGE, type BenchOptions, type Samples } from './options.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** Writes `mib` MiB of random bytes to `path`, hashing as it goes; answers the digest. */
async function writeRandomFile(path: string, mib: number): Promise<string> {
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let i = 0; i < mib; i++) {
      const block = randomBytes(MiB);
      hash.update(block);
      await fh.write(block);
    }
  } finally {
    await fh.close();
  }
  return `sha256:${hash.digest('hex')}`;
}

/** An OCI layout holding one image whose single layer is the blob file (hard-linked). */
async function makeLayout(dir: string, blobPath: string, digest: string, size: number): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  await link(blobPath, join(blobs, digest.slice(7)));
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest] } }));
  await writeFile(join(blobs, sha256(config).slice(7)), config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size }],
    }),
  );
  await writeFile(join(blobs, sha256(manifest).slice(7)), manifest);
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  await writeFile(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: sha256(manifest),
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': 'bench' },
        },
      ],
    }),
  );
}

async function smallBlobs(base: string, repo: string, blobs: readonly Buffer[], concurrency: number): Promise<number> {
  const digests = blobs.map(sha256);
  let next = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < blobs.length) {
        const i = next++;
        await pushMonolithic(base, repo, digests[i] as string, (blobs[i] as Buffer).length, () => blobs[i] as Buffer);
      }
    }),
  );
  return blobs.length / (Number(process.hrtime.bigint() - t0) / 1e9);
}

function log(msg: string): void {
  process.stderr.write(`bench: ${msg}\n`);
}

function add(samples: Samples, target: string, key: string, value: number): void {
  const byMetric = (samples[target] ??= {});
  (byMetric[key] ??= []).push(value);
}

async function startTargets(o: BenchOptions): Promise<RunningRegistry[]> {
  const servers: RunningRegistry[] = [];
  for (const t of o.targets) {
    try {
      servers.push(t === 'distribution' ? await startDockerRegistry() : await startUkcRegistry(ROOT));
      log(`${t} listening on ${servers.at(-1)?.baseUrl}`);
    } catch (err) {
      log(`${t}: could not start (${(err as Error).message.split('\n')[0]}); measuring without it`);
    }
  }
  return servers;
}

export async function main(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return 0;
  }
  let o: BenchOptions;
  try {
    o = parseBenchArgs(argv);
  } catch (err) {
    if (err instanceof BenchUsageError) {
      process.stderr.write(`${err.message}\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  const work = await mkdtemp(join(tmpdir(), 'ukc-bench-'));
  const servers = await startTargets(o);
  if (servers.length === 0) {
    await rm(work, { recursive: true, force: true });
    log('no server to measure');
    return 1;
  }
  const samples: Samples = {};
  const notes: string[] = [];
  try {
    const size = o.blobMiB * MiB;
    for (let r = 0; r < o.runs; r++) {
      // Fresh random content each run: no server (and no skopeo blob-info cache,
      // which would otherwise turn later pushes into cross-repository mounts) has seen it.
      const blobPath = join(work, `blob${r}`);
      log(`run ${r + 1}: writing a ${o.blobMiB} MiB random blob`);
      const digest = await writeRandomFile(blobPath, o.blobMiB);
      const layout = join(work, `layout${r}`);
      await makeLayout(layout, blobPath, digest, size);
      const small = Array.from({ length: o.smallCount }, () => randomBytes(o.smallBytes));
      for (const s of servers) {
        const tag = `${s.name} run ${r + 1}/${o.runs}`;
        const pushSeconds = await pushMonolithic(s.baseUrl, `bench/push${r}`, digest, size, fileBody(blobPath));
        add(samples, s.name, 'pushMiBs', o.blobMiB / pushSeconds);
        const [pullSeconds, got] = await pullBlob(s.baseUrl, `bench/push${r}`, digest);
        if (got !== size) throw new Error(`${s.name}: pulled ${got} bytes, expected ${size}`);
        add(samples, s.name, 'pullMiBs', o.blobMiB / pullSeconds);
        if (o.skopeo) {
          const t0 = process.hrtime.bigint();
          await run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--preserve-digests', `oci:${layout}:bench`, `docker://${s.host}/bench/skopeo${r}:bench`], {
            maxBuffer: 1 << 20,
          });
          add(samples, s.name, 'skopeoPushMiBs', o.blobMiB / (Number(process.hrtime.bigint() - t0) / 1e9));
        }
        const perSecond = await smallBlobs(s.baseUrl, `bench/small${r}`, small, o.concurrency);
        add(samples, s.name, 'smallBlobsPerSec', perSecond);
        const last = (k: string): string => (samples[s.name]?.[k]?.at(-1) ?? NaN).toFixed(1);
        log(`${tag}: push ${last('pushMiBs')} MiB/s, pull ${last('pullMiBs')} MiB/s, skopeo ${o.skopeo ? last('skopeoPushMiBs') : '-'} MiB/s, small ${last('smallBlobsPerSec')} blobs/s`);
      }
      await rm(layout, { recursive: true, force: true });
      await rm(blobPath, { force: true });
    }
    if (o.big) {
      const block = randomBytes(MiB);
      const bigBody = repeatingBody(block, o.bigMiB * MiB);
      const hash = createHash('sha256');
      for await (const c of bigBody()) hash.update(c as Buffer);
      const bigDigest = `sha256:${hash.digest('hex')}`;
      for (const s of servers) {
        const sampler = rssSampler(s.pid);
        const seconds = await pushMonolithic(s.baseUrl, 'bench/big', bigDigest, o.bigMiB * MiB, bigBody);
        add(samples, s.name, 'bigRssMiB', (await sampler.stop()) / 1024);
        log(`${s.name}: ${o.bigMiB} MiB streamed blob at ${(o.bigMiB / seconds).toFixed(1)} MiB/s`);
      }
    }
    for (const s of servers) {
      const hwm = await procStatusKiB(s.pid, 'VmHWM');
      if (hwm !== undefined) add(samples, s.name, 'peakRssMiB', hwm / 1024);
    }
    // A last sanity check that the servers still answer.
    for (const s of servers) {
      const ping = await request('GET', `${s.baseUrl}/v2/`);
      if (ping.status !== 200) notes.push(`${s.name} answered ${ping.status} to GET /v2/ at the end`);
    }
  } finally {
    for (const s of servers) await s.stop();
    await rm(work, { recursive: true, force: true });
  }

  const summary = summarize(samples);
  const date = new Date().toISOString();
  const result = {
    date,
    machine: { cpus: cpus().length, cpuModel: cpus()[0]?.model, node: process.version, note: 'shared, noisy machine: compare ratios' },
    options: o,
    samples,
    ...summary,
    notes,
  };
  const outDir = resolve(ROOT, o.outDir);
  await mkdir(outDir, { recursive: true });
  const outPath = join(outDir, `registry-${date.slice(0, 10)}.json`);
  await writeFile(outPath, `${JSON.stringify(result, null, 2)}\n`);
  process.stdout.write(`${formatTable(summary, o.runs)}\n\nresults: ${outPath}\n`);
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
