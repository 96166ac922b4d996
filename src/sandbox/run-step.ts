// runStep: run one build command (a Dockerfile RUN) in a stage's root directory.
// Invariant: when runStep returns, the rootfs holds exactly what the command wrote — no
// mount-point stubs (/proc, /dev, /etc/resolv.conf, … created for the sandbox are removed
// by the launcher's init inside the sandbox, and their parents' times restored when nothing
// else changed them). If that cannot be guaranteed, runStep throws instead of returning.
import type { Cgroup } from './cgroups.js';
import { spawnSandbox, type BindMount, type SandboxError } from './launcher.js';

export const DEFAULT_STEP_TIMEOUT_MS = 30 * 60_000;
export const DEFAULT_STEP_OUTPUT_LIMIT_BYTES = 4 * 1024 * 1024;
export const DEFAULT_STEP_STOP_GRACE_MS = 2_000;

export interface RunStepOptions {
  /** The stage's root directory (writable; changes land in it). */
  rootfs: string;
  argv: string[];
  /** Exactly the environment of the command (K=V). */
  env: string[];
  /** Numeric ids; resolving USER names is the caller's job. */
  uid?: number;
  gid?: number;
  groups?: number[];
  /** WORKDIR (created by the caller if it must exist). */
  cwd?: string;
  hostname?: string;
  /** 'host' (default, like `docker build`) or 'none' (an empty netns with only lo). */
  network?: 'host' | 'none';
  /** Files bind-mounted read-only at /etc/resolv.conf and /etc/hosts; null leaves them out. */
  resolvConf?: string | null;
  hosts?: string | null;
  timeoutMs?: number;
  /** Per stream; output beyond it is dropped and flagged. */
  outputLimitBytes?: number;
  cgroup?: Cgroup;
  /** Sees every output chunk (for progress), even beyond the cap. */
  onOutput?: (stream: 'stdout' | 'stderr', chunk: Buffer) => void;
  launcherPath?: string;
}

export interface RunStepResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: Buffer;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  timedOut: boolean;
  oomKilled: boolean;
  /** exit 127: the program (argv[0]) was not found in the root. */
  commandNotFound: boolean;
  error?: SandboxError;
  /** A one-line description fit for a build log when the step did not succeed. */
  failure?: string;
  durationMs: number;
}

class CappedBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      this.truncated = true;
      return;
    }
    const part = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (part.length < chunk.length) this.truncated = true;
    this.chunks.push(part);
    this.size += part.length;
  }
  value(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export async function runStep(opts: RunStepOptions): Promise<RunStepResult> {
  const started = Date.now();
  const limit = opts.outputLimitBytes ?? DEFAULT_STEP_OUTPUT_LIMIT_BYTES;
  const binds: BindMount[] = [];
  const resolv = opts.resolvConf === undefined ? '/etc/resolv.conf' : opts.resolvConf;
  const hosts = opts.hosts === undefined ? '/etc/hosts' : opts.hosts;
  if (resolv) binds.push({ source: resolv, target: '/etc/resolv.conf', readonly: true });
  if (hosts) binds.push({ source: hosts, target: '/etc/hosts', readonly: true });

  const proc = spawnSandbox({
    rootfs: opts.rootfs,
    argv: opts.argv,
    env: opts.env,
    uid: opts.uid ?? 0,
    gid: opts.gid ?? 0,
    groups: opts.groups ?? [],
    ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
    ...(opts.hostname !== undefined ? { hostname: opts.hostname } : {}),
    ...(opts.cgroup ? { cgroup: opts.cgroup } : {}),
    ...(opts.launcherPath ? { launcherPath: opts.launcherPath } : {}),
    network: opts.network === 'none' ? 'new' : 'host',
    proc: true,
    dev: true,
    binds,
    removeStubs: true,
    graceMs: DEFAULT_STEP_STOP_GRACE_MS,
    stdin: 'ignore',
    stdout: 'pipe',
    stderr: 'pipe',
  });
  const out = new CappedBuffer(limit);
  const err = new CappedBuffer(limit);
  proc.stdout?.on('data', (c: Buffer) => {
    out.push(c);
    opts.onOutput?.('stdout', c);
  });
  proc.stderr?.on('data', (c: Buffer) => {
    err.push(c);
    opts.onOutput?.('stderr', c);
  });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    void proc.stop(DEFAULT_STEP_STOP_GRACE_MS);
  }, opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS);
  const exit = await proc.exited;
  clearTimeout(timer);

  if (exit.stubs.length > 0 && exit.stubsRemoved !== true) {
    throw new Error(`runStep: mount-point stubs may remain in ${opts.rootfs}: ${exit.stubs.join(', ')}`);
  }
  const commandNotFound = exit.code === 127 && exit.error?.stage === 'exec' && exit.error.code === 'ENOENT';
  const result: RunStepResult = {
    exitCode: exit.code,
    signal: exit.signal,
    stdout: out.value(),
    stderr: err.value(),
    stdoutTruncated: out.truncated,
    stderrTruncated: err.truncated,
    timedOut,
    oomKilled: exit.oomKilled,
    commandNotFound,
    durationMs: Date.now() - started,
  };
  if (exit.error) result.error = exit.error;
  if (commandNotFound) result.failure = `command not found: ${opts.argv[0] ?? ''}`;
  else if (exit.error) result.failure = `${exit.error.stage} failed: ${exit.error.message} (${exit.error.code})`;
  else if (timedOut) result.failure = `timed out after ${opts.timeoutMs ?? DEFAULT_STEP_TIMEOUT_MS} ms`;
  else if (exit.oomKilled) result.failure = 'killed: out of memory';
  else if (exit.signal) result.failure = `killed by ${exit.signal}`;
  else if (exit.code !== 0) result.failure = `exit code ${exit.code}`;
  return result;
}
