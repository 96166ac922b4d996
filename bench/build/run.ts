/**
 * Build benchmark: buildah (`buildah --storage-driver vfs bud --isolation chroot`)
 * and `unikraft build` on the same Dockerfiles, in one run: a cold build (empty
 * storage / cache) and a no-change rebuild (warm), each the median of --runs.
 * Both are timed as whole CLI processes (Node start included for ukc). Writes
 * bench/results/build.json and prints a table.
 *
 * Not identical work: buildah stores layers in its local storage; ukc also packs
 * the rootfs into an EROFS initrd and writes an .oci.tar. Both are the user's
 * "build this Dockerfile" step.
 *
 * Usage: npm run build && node dist/bench/build/run.js [--runs 3]
 */
import { execFile } from 'node:child_process';
import { copyFile, chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

interface Scenario {
  name: string;
  dockerfile: string;
}

const SCENARIOS: Scenario[] = [
  { name: 'scratch + 2 COPY (busybox, 2 MB)', dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCOPY app/ /app/\n' },
  {
    name: 'scratch + COPY + 2 RUN',
    dockerfile:
      'FROM scratch\nCOPY busybox /bin/busybox\nCOPY app/ /app/\nRUN ["/bin/busybox", "mkdir", "-p", "/out"]\nRUN ["/bin/busybox", "cp", "-r", "/app", "/out/"]\n',
  },
];

async function timed(cmd: string, args: string[], cwd: string): Promise<number> {
  const started = process.hrtime.bigint();
  await run(cmd, args, { cwd, maxBuffer: 64 << 20 });
  return Number(process.hrtime.bigint() - started) / 1e6;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

async function context(dir: string, s: Scenario): Promise<void> {
  await mkdir(join(dir, 'app'), { recursive: true });
  await copyFile('/usr/bin/busybox', join(dir, 'busybox'));
  await chmod(join(dir, 'busybox'), 0o755);
  for (let i = 0; i < 50; i++) await writeFile(join(dir, 'app', `f${i}.txt`), `file ${i}\n`.repeat(100));
  await writeFile(join(dir, 'Dockerfile'), s.dockerfile);
}

async function main(): Promise<void> {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Math.max(1, Math.min(20, Number(process.argv[runsArg + 1]) || 3)) : 3;
  const work = await mkdtemp(join(tmpdir(), 'ukc-bench-build-'));
  const results = [];
  try {
    for (const s of SCENARIOS) {
      const ctx = join(work, 'ctx');
      await rm(ctx, { recursive: true, force: true });
      await context(ctx, s);
      const times = { buildahCold: [] as number[], buildahWarm: [] as number[], ukcCold: [] as number[], ukcWarm: [] as number[] };
      for (let r = 0; r < runs; r++) {
        const store = join(work, `buildah-${r}`);
        const bargs = ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', 'bud', '--layers', '--isolation', 'chroot', '-t', 'bench', '.'];
        times.buildahCold.push(await timed('buildah', bargs, ctx));
        times.buildahWarm.push(await timed('buildah', bargs, ctx));
        await run('buildah', ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', 'rmi', '--all', '--force']).catch(() => undefined);
        await rm(store, { recursive: true, force: true });
        const cache = join(work, `ukc-${r}`);
        const uargs = [join(ROOT, 'bin', 'unikraft.js'), 'build', '.', '--output', join(work, 'out.oci.tar'), '--cache-dir', cache];
        times.ukcCold.push(await timed(process.execPath, uargs, ctx));
        times.ukcWarm.push(await timed(process.execPath, uargs, ctx));
        await rm(cache, { recursive: true, force: true });
      }
      results.push({
        scenario: s.name,
        runs,
        buildah: { coldMs: median(times.buildahCold), rebuildMs: median(times.buildahWarm) },
        ukc: { coldMs: median(times.ukcCold), rebuildMs: median(times.ukcWarm) },
        samples: times,
      });
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const out = { machine: 'shared, 2 cores', date: new Date().toISOString(), buildah: '1.28 (vfs, chroot isolation, --layers so it caches)', results };
  await mkdir(join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(join(ROOT, 'bench', 'results', 'build.json'), `${JSON.stringify(out, null, 2)}\n`);
  const rows = results.map((r) => `| ${r.scenario} | ${r.buildah.coldMs.toFixed(0)} | ${r.ukc.coldMs.toFixed(0)} | ${r.buildah.rebuildMs.toFixed(0)} | ${r.ukc.rebuildMs.toFixed(0)} |`);
  process.stdout.write(['| scenario | buildah cold ms | ukc cold ms | buildah rebuild ms | ukc rebuild ms |', '|---|---|---|---|---|', ...rows].join('\n') + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
