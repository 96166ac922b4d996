/**
 * Command-line options of the registry benchmark, and the formatting of its
 * results (medians, ratios, the markdown table). Kept apart from run.ts so a
 * unit test can exercise them without starting servers.
 */

export interface BenchOptions {
  /** Repetitions of each measurement; medians are reported. */
  runs: number;
  /** Size of the large blob, MiB. */
  blobMiB: number;
  /** Count and size of the small-blob test. */
  smallCount: number;
  smallBytes: number;
  /** Concurrent clients in the small-blob test. */
  concurrency: number;
  /** Also measure RSS while each server receives a `bigMiB` streamed blob. */
  big: boolean;
  bigMiB: number;
  /** Run the skopeo push measurement. */
  skopeo: boolean;
  /** Which servers to measure. */
  targets: string[];
  /** Directory for the JSON results. */
  outDir: string;
}

export const DEFAULT_OPTIONS: BenchOptions = {
  runs: 3,
  blobMiB: 256,
  smallCount: 2000,
  smallBytes: 4096,
  concurrency: 8,
  big: false,
  bigMiB: 1024,
  skopeo: true,
  targets: ['distribution', 'ukc'],
  outDir: 'bench/results',
};

export const USAGE = `usage: node dist/bench/registry/run.js [options]
  --runs N           repetitions per measurement (default 3; medians reported)
  --blob-mib N       large blob size in MiB (default 256)
  --small N          number of small blobs (default 2000)
  --small-bytes N    size of each small blob (default 4096)
  --concurrency N    concurrent clients for small blobs (default 8)
  --big / --no-big   RSS while receiving a streamed --big-mib blob (default off)
  --big-mib N        size of that blob in MiB (default 1024)
  --no-skopeo        skip the skopeo push measurement
  --targets a,b      servers to measure: distribution, ukc (default both)
  --out DIR          results directory (default bench/results)
`;

export class BenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BenchUsageError';
  }
}

function positiveInt(flag: string, value: string | undefined): number {
  const n = Number(value);
  if (value === undefined || !Number.isSafeInteger(n) || n <= 0) throw new BenchUsageError(`${flag} needs a positive integer`);
  return n;
}

const KNOWN_TARGETS = new Set(['distribution', 'ukc']);

export function parseBenchArgs(argv: readonly string[]): BenchOptions {
  const o: BenchOptions = { ...DEFAULT_OPTIONS, targets: [...DEFAULT_OPTIONS.targets] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string | undefined => inline ?? argv[++i];
    switch (flag) {
      case '--runs': o.runs = positiveInt(flag, value()); break;
      case '--blob-mib': o.blobMiB = positiveInt(flag, value()); break;
      case '--small': o.smallCount = positiveInt(flag, value()); break;
      case '--small-bytes': o.smallBytes = positiveInt(flag, value()); break;
      case '--concurrency': o.concurrency = positiveInt(flag, value()); break;
      case '--big': o.big = true; break;
      case '--no-big': o.big = false; break;
      case '--big-mib': o.bigMiB = positiveInt(flag, value()); break;
      case '--no-skopeo': o.skopeo = false; break;
      case '--targets': {
        const list = (value() ?? '').split(',').filter(Boolean);
        const bad = list.filter((t) => !KNOWN_TARGETS.has(t));
        if (list.length === 0 || bad.length > 0) throw new BenchUsageError(`--targets: unknown ${bad.join(',') || '(empty)'}`);
        o.targets = list;
        break;
      }
      case '--out': {
        const v = value();
        if (!v) throw new BenchUsageError('--out needs a directory');
        o.outDir = v;
        break;
      }
      default:
        throw new BenchUsageError(`unknown option ${a}`);
    }
  }
  return o;
}

export function median(values: readonly number[]): number | undefined {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return undefined;
  const mid = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
}

/** One measured quantity: how it is named, its unit, whether more is better. */
export interface Metric {
  key: string;
  label: string;
  unit: string;
  higherIsBetter: boolean;
}

export const METRICS: readonly Metric[] = [
  { key: 'pushMiBs', label: 'monolithic push (POST + PUT)', unit: 'MiB/s', higherIsBetter: true },
  { key: 'pullMiBs', label: 'blob pull', unit: 'MiB/s', higherIsBetter: true },
  { key: 'skopeoPushMiBs', label: 'skopeo push (--preserve-digests)', unit: 'MiB/s', higherIsBetter: true },
  { key: 'smallBlobsPerSec', label: 'small blobs (POST + PUT), concurrent', unit: 'blobs/s', higherIsBetter: true },
  { key: 'peakRssMiB', label: 'server peak RSS (VmHWM) over the run', unit: 'MiB', higherIsBetter: false },
  { key: 'bigRssMiB', label: 'server RSS while receiving the big blob', unit: 'MiB', higherIsBetter: false },
];

/** Samples per target per metric key. */
export type Samples = Record<string, Record<string, number[]>>;

export interface Summary {
  medians: Record<string, Record<string, number | undefined>>;
  /** ukc / distribution, per metric, when both exist. */
  ratios: Record<string, number | undefined>;
}

export function summarize(samples: Samples): Summary {
  const medians: Summary['medians'] = {};
  for (const [target, byMetric] of Object.entries(samples)) {
    medians[target] = {};
    for (const m of METRICS) (medians[target] as Record<string, number | undefined>)[m.key] = median(byMetric[m.key] ?? []);
  }
  const ratios: Summary['ratios'] = {};
  for (const m of METRICS) {
    const u = medians.ukc?.[m.key];
    const p = medians.distribution?.[m.key];
    ratios[m.key] = u !== undefined && p !== undefined && p > 0 ? u / p : undefined;
  }
  return { medians, ratios };
}

function fmt(n: number | undefined, digits = 1): string {
  return n === undefined ? '—' : n.toFixed(digits);
}

/** The markdown table printed at the end of a run (and pasted into bench/README.md). */
export function formatTable(summary: Summary, runs: number): string {
  const lines = [
    `| measurement (median of ${runs}) | distribution 2.8 | ukc | ukc / distribution |`,
    '|---|---:|---:|---:|',
  ];
  for (const m of METRICS) {
    const p = summary.medians.distribution?.[m.key];
    const u = summary.medians.ukc?.[m.key];
    if (p === undefined && u === undefined) continue;
    lines.push(`| ${m.label} (${m.unit}) | ${fmt(p)} | ${fmt(u)} | ${fmt(summary.ratios[m.key], 2)} |`);
  }
  return lines.join('\n');
}
