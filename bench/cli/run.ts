/**
 * CLI start-time benchmark (issue 14 item 8): `node -e 0` and the `unikraft`
 * commands people type most, timed side by side in one run as whole processes.
 *
 *   node dist/bench/cli/run.js [--runs 30] [--warmup 3] [--out FILE] [--no-hyperfine]
 *
 * Each command runs `--runs` times after `--warmup` unmeasured runs, with
 * hyperfine (Debian's 1.15: `-N`, no shell in between) when it is installed,
 * else with our own loop (spawn, wait for exit, hrtime). The CLI sees a fresh
 * HOME and config path (nothing to read), only PATH of the caller's environment
 * (`--inherit-env` keeps all of it), and `UKC_METRO` set to:
 *   - `closed`: a loopback port nothing listens on (`instances list` fails fast
 *     with "cannot reach the platform", exit 4 — the start cost and the error path);
 *   - `stub`: a stub node API in this process answering `GET /v1/instances`
 *     with three instances (the whole success path: request, envelope, table).
 * Reported per command: median, p99, min and mean CPU time (user + system,
 * hyperfine only), each with its ratio to `node -e 0` (the target is ≤ 1.5).
 * The JSON and the table go to bench/results/.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir, loadavg, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort } from '../lib/servers.js';

/** Repetitions per command (medians and p99 over these). */
export const DEFAULT_RUNS = 30;
/** Unmeasured runs first (page cache, V8 code cache on disk). */
export const DEFAULT_WARMUP = 3;
/** The target of issue 14 item 8: each command's median within this factor of `node -e 0`. */
export const TARGET_RATIO = 1.5;

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const cliBin = join(repoRoot, 'bin', 'unikraft.js');

interface Case {
  name: string;
  argv: string[];
  /** Exit codes that count as the expected outcome. */
  ok: number[];
}

interface CaseResult {
  name: string;
  command: string;
  times_ms: number[];
  /** The least disturbed run: on a loaded machine the closest to the command's own cost. */
  min_ms: number;
  median_ms: number;
  p99_ms: number;
  mean_ms: number;
  /** Mean user + system CPU time of the process (hyperfine only): steadier than wall time on a loaded machine. */
  cpu_ms: number | null;
  ratio_to_node: number;
  cpu_ratio_to_node: number | null;
}

interface Timing {
  times: number[];
  cpuMs: number | null;
}

/** The commands of one group: `node -e 0`, then each `unikraft` command with this checkout's bin and, with --baseline, with that one. */
function cases(platform: 'closed' | 'stub', onlyList: boolean, baseline: string | undefined): Case[] {
  const bins: Array<[string, string]> = [[cliBin, ''], ...(baseline !== undefined ? [[baseline, ' [baseline]'] as [string, string]] : [])];
  const out: Case[] = [{ name: 'node -e 0', argv: [process.execPath, '-e', '0'], ok: [0] }];
  for (const [bin, label] of bins) {
    if (!onlyList) {
      out.push({ name: `unikraft --help${label}`, argv: [process.execPath, bin, '--help'], ok: [0] });
      out.push({ name: `unikraft instances --help${label}`, argv: [process.execPath, bin, 'instances', '--help'], ok: [0] });
      out.push({ name: `unikraft version${label}`, argv: [process.execPath, bin, 'version'], ok: [0] });
    }
    // Against a closed port the platform is unreachable: exit 4, after the whole start and one refused connect.
    out.push({ name: `unikraft instances list (${platform})${label}`, argv: [process.execPath, bin, 'instances', 'list'], ok: platform === 'closed' ? [4] : [0] });
  }
  return out;
}

/** The nearest-rank percentile of sorted samples. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function run(argv: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; ms: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(argv[0]!, argv.slice(1), { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? -1, ms: Number(process.hrtime.bigint() - started) / 1e6, stderr }));
  });
}

async function hasHyperfine(): Promise<boolean> {
  try {
    return (await run(['hyperfine', '--version'], process.env)).code === 0;
  } catch {
    return false;
  }
}

/** All cases with hyperfine in one invocation (it alternates nothing, but runs them back to back in one go); times in ms. */
async function timeWithHyperfine(list: Case[], env: NodeJS.ProcessEnv, runs: number, warmup: number, work: string): Promise<Timing[]> {
  const json = join(work, 'hyperfine.json');
  const args = ['-N', '--style', 'basic', '--warmup', String(warmup), '--runs', String(runs), '--export-json', json];
  // hyperfine -N splits the command on whitespace: the paths here have none (checked below).
  for (const c of list) {
    if (c.argv.some((a) => /\s/.test(a))) throw new Error(`hyperfine -N cannot run a path with spaces: ${c.argv.join(' ')}`);
    args.push('-n', c.name, c.argv.join(' '));
  }
  args.push('--ignore-failure');
  const res = await run(['hyperfine', ...args], env);
  if (res.code !== 0) throw new Error(`hyperfine failed (exit ${res.code}): ${res.stderr}`);
  const out = JSON.parse(readFileSync(json, 'utf8')) as { results: Array<{ command: string; times: number[]; user: number; system: number; exit_codes?: number[] }> };
  return out.results.map((r, i) => {
    const bad = (r.exit_codes ?? []).filter((c) => !list[i]!.ok.includes(c));
    if (bad.length > 0) throw new Error(`${list[i]!.name}: unexpected exit codes ${[...new Set(bad)].join(', ')}`);
    return { times: r.times.map((s) => s * 1000), cpuMs: (r.user + r.system) * 1000 };
  });
}

/** Our own loop when hyperfine is absent: the cases interleaved round by round, so load changes hit all of them alike. */
async function timeWithLoop(list: Case[], env: NodeJS.ProcessEnv, runs: number, warmup: number): Promise<Timing[]> {
  const times: number[][] = list.map(() => []);
  for (let round = 0; round < warmup + runs; round++) {
    for (const [i, c] of list.entries()) {
      const r = await run(c.argv, env);
      if (!c.ok.includes(r.code)) throw new Error(`${c.name}: exit ${r.code}\n${r.stderr}`);
      if (round >= warmup) times[i]!.push(r.ms);
    }
  }
  return times.map((t) => ({ times: t, cpuMs: null }));
}

/** A stub of the node API: `GET /v1/instances` → three instances; anything else 404. */
function startStub(): Promise<Server> {
  const created = new Date(Date.now() - 3_600_000).toISOString();
  const instances = ['web', 'api', 'worker'].map((name, i) => ({
    uuid: `00000000-0000-4000-8000-00000000000${i}`,
    name,
    state: 'running',
    image: `127.0.0.1:7000/root/${name}:latest`,
    memory_mb: 256,
    vcpus: 1,
    args: [],
    created_at: created,
  }));
  const body = JSON.stringify({ status: 'success', data: { instances } });
  const server = createServer((req, res) => {
    if (req.method === 'GET' && req.url?.startsWith('/v1/instances')) res.writeHead(200, { 'content-type': 'application/json' }).end(body);
    else res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'error', message: 'not found' }));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

function table(results: CaseResult[]): string {
  const cpu = (r: CaseResult): string => (r.cpu_ms === null ? '–' : `${r.cpu_ms.toFixed(1)} (${r.cpu_ratio_to_node!.toFixed(2)}×)`);
  const node = results.find((r) => r.name === 'node -e 0');
  const rows = results.map((r) => `| ${r.name} | ${r.median_ms.toFixed(1)} | ${r.p99_ms.toFixed(1)} | ${r.ratio_to_node.toFixed(2)} | ${r.min_ms.toFixed(1)} (${node ? (r.min_ms / node.min_ms).toFixed(2) : '–'}×) | ${cpu(r)} |`);
  return ['| command | median ms | p99 ms | median ÷ node -e 0 | min ms (÷ node) | CPU ms, mean (÷ node) |', '|---|---:|---:|---:|---:|---:|', ...rows].join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string' },
      warmup: { type: 'string' },
      platform: { type: 'string' },
      out: { type: 'string' },
      baseline: { type: 'string' },
      'inherit-env': { type: 'boolean' },
      'no-hyperfine': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`usage: node dist/bench/cli/run.js [options]
  --runs N              measured runs per command (default ${DEFAULT_RUNS})
  --warmup N            unmeasured runs first (default ${DEFAULT_WARMUP})
  --platform closed|stub|both
                        what \`instances list\` talks to: a closed loopback port, a stub
                        node API in this process, or both (default both)
  --baseline BIN        also time another build's bin/unikraft.js in the same run (before/after)
  --inherit-env         run the commands with this shell's environment (e.g. NODE_EXTRA_CA_CERTS, which
                        costs every node process ~30 ms here) instead of only PATH and the CLI's settings
  --out FILE            the JSON results (default bench/results/cli-<date>.json)
  --no-hyperfine        time with our own loop even if hyperfine is installed
`);
    return;
  }
  const runs = Number(values.runs ?? DEFAULT_RUNS);
  const warmup = Number(values.warmup ?? DEFAULT_WARMUP);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(warmup) || warmup < 0) throw new Error('--runs and --warmup are whole numbers');
  const chosen = values.platform ?? 'both';
  if (chosen !== 'closed' && chosen !== 'stub' && chosen !== 'both') throw new Error('--platform is closed, stub or both');
  const platforms: Array<'closed' | 'stub'> = chosen === 'both' ? ['closed', 'stub'] : [chosen];
  const tool = values['no-hyperfine'] !== true && (await hasHyperfine()) ? 'hyperfine' : 'loop';

  const work = mkdtempSync(join(tmpdir(), 'ukc-bench-cli-'));
  const stub = await startStub();
  try {
    const closedPort = await freePort();
    const metros: Record<'closed' | 'stub', string> = {
      closed: `http://127.0.0.1:${closedPort}`,
      stub: `http://127.0.0.1:${(stub.address() as AddressInfo).port}`,
    };
    const results: CaseResult[] = [];
    const load = { start: loadavg()[0]!, end: NaN };
    for (const platform of platforms) {
      // A config path that does not exist (nothing to parse): the CLI's state as on a machine set up with UKC_METRO only.
      const own = { HOME: work, UNIKRAFT_CONFIG: join(work, 'none.yaml'), UKC_METRO: metros[platform], UKC_TOKEN: 'bench' };
      const env: NodeJS.ProcessEnv = values['inherit-env'] === true ? { ...process.env, ...own } : { PATH: process.env.PATH, ...own };
      const list = cases(platform, platform !== platforms[0], values.baseline);
      const timings = tool === 'hyperfine' ? await timeWithHyperfine(list, env, runs, warmup, work) : await timeWithLoop(list, env, runs, warmup);
      const base = median(timings[0]!.times);
      const baseCpu = timings[0]!.cpuMs;
      list.forEach((c, i) => {
        if (platform !== platforms[0] && c.name === 'node -e 0') return;
        const { times: t, cpuMs } = timings[i]!;
        const sorted = [...t].sort((a, b) => a - b);
        results.push({
          name: c.name,
          command: c.argv.map((a) => (a === process.execPath ? 'node' : a.replace(`${repoRoot}/`, ''))).join(' '),
          times_ms: t.map((x) => +x.toFixed(2)),
          min_ms: +sorted[0]!.toFixed(2),
          median_ms: +median(t).toFixed(2),
          p99_ms: +percentile(sorted, 99).toFixed(2),
          mean_ms: +(t.reduce((a, b) => a + b, 0) / t.length).toFixed(2),
          cpu_ms: cpuMs === null ? null : +cpuMs.toFixed(2),
          // Each group has its own `node -e 0` run next to it.
          ratio_to_node: +(median(t) / base).toFixed(3),
          cpu_ratio_to_node: cpuMs === null || baseCpu === null ? null : +(cpuMs / baseCpu).toFixed(3),
        });
      });
    }
    load.end = loadavg()[0]!;
    const date = new Date().toISOString();
    const report = { date, node: process.version, tool, runs, warmup, env: values['inherit-env'] === true ? 'inherited' : 'PATH only', node_extra_ca_certs: values['inherit-env'] === true && process.env.NODE_EXTRA_CA_CERTS !== undefined, cpus: cpus().length, loadavg_1m: load, target_ratio: TARGET_RATIO, results };
    const out = values.out ?? join(repoRoot, 'bench', 'results', `cli-${date.slice(0, 10)}.json`);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    const md = `${table(results)}\n\n${tool}, ${runs} runs after ${warmup} warm-up, environment ${report.env}${report.node_extra_ca_certs ? ' (with NODE_EXTRA_CA_CERTS)' : ''}, node ${process.version}, load average ${load.start.toFixed(1)} → ${load.end.toFixed(1)}; JSON: ${out}\n`;
    writeFileSync(out.replace(/\.json$/, '.md'), md);
    process.stdout.write(md);
  } finally {
    await new Promise<void>((resolve) => stub.close(() => resolve()));
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/cli: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
