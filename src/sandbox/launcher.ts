// spawnSandbox: starts the native launcher (dist/native/ukc-sandbox) and turns its
// event lines (fd 3) into typed events. One tiny C supervisor per sandbox; Node holds
// only a pipe for events (and stdout/stderr pipes unless they go to a log file fd).
//
// Event protocol (one line each, see src/sandbox/native/ukc-sandbox/main.c):
//   pid N | ready | stub PATH SEC NSEC | mark STAGE NS (with trace) | exec NS | error STAGE ERRNO MESSAGE | cleanup ok|incomplete | exit code N | exit signal N
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { existsSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';
import type { Cgroup } from './cgroups.js';

/**
 * Where `npm run build` puts the launcher (scripts/build-native.sh), relative to this module in dist.
 * UKC_SANDBOX_LAUNCHER replaces it: the sanitizer test runs the launcher tests against an
 * ASan/UBSan build this way (whoever sets the node's environment chooses its binaries anyway).
 */
export const DEFAULT_LAUNCHER_PATH = process.env['UKC_SANDBOX_LAUNCHER'] || fileURLToPath(new URL('../../native/ukc-sandbox', import.meta.url));

/** The launcher's fd the spec (env and argv included) is written to by spawnSandbox and cold starts. */
export const SPEC_FD = 4;

/** Default time between the polite SIGTERM and the kill, in ms. */
export const DEFAULT_STOP_GRACE_MS = 10_000;

export interface BindMount {
  /** Host path (file or directory). */
  source: string;
  /** Absolute path inside the sandbox; created (and reported as a stub) when missing. */
  target: string;
  readonly?: boolean;
}

/** 'host' shares the caller's network; 'new' gives an empty netns with lo up; netnsPath joins one (e.g. /run/netns/X). */
export type SandboxNetwork = 'host' | 'new' | { netnsPath: string };

/** Where the sandbox's stdout/stderr go: a pipe Node reads, inherited, discarded, or an open fd (e.g. a log file). */
export type SandboxOutput = 'pipe' | 'inherit' | 'ignore' | number;

export interface SandboxSpec {
  /** Root directory; with `overlay` it is the mount point of the overlay (inside the sandbox's mount ns only). */
  rootfs: string;
  /** With upperTmpfsBytes the writable layer lives on a tmpfs of that size (in memory, charged to the cgroup; past it writes get ENOSPC); `work` is then unused. */
  overlay?: { lower: string[]; upper: string; work: string; upperTmpfsBytes?: number };
  /** argv[0] without '/' is searched in PATH from `env` (or a default PATH), never the host's. */
  argv: string[];
  /** Exactly the environment the program gets, as K=V strings. Nothing from the host leaks in. */
  env?: string[];
  cwd?: string;
  uid?: number;
  gid?: number;
  groups?: number[];
  hostname?: string;
  /**
   * Run the app in its own user namespace mapping uid/gid 0..65535 to hostIdBase.. on the host
   * (the launcher idmaps the overlay's lower layers so files keep the image's owners). Needs overlay.upperTmpfsBytes.
   */
  userNamespace?: { hostIdBase: number };
  network?: SandboxNetwork;
  readonlyRoot?: boolean;
  /** Mount /proc (default true). */
  proc?: boolean;
  /** Mount a small tmpfs /dev with null, zero, full, random, urandom, tty, shm (default true). */
  dev?: boolean;
  devpts?: boolean;
  tmpfs?: string[];
  binds?: BindMount[];
  /** Cgroup to join before exec; its limits apply to everything in the sandbox. */
  cgroup?: Cgroup;
  /** Remove the mount points the launcher created, once the program has exited (needs a writable root). */
  removeStubs?: boolean;
  /** The launcher's own grace before killing after SIGTERM (stop() may use a shorter one). */
  graceMs?: number;
  /** Report `mark STAGE NS` event lines for each setup stage (profiling). */
  trace?: boolean;
  stdin?: 'ignore' | 'pipe';
  stdout?: SandboxOutput;
  stderr?: SandboxOutput;
  launcherPath?: string;
}

export interface SandboxStarted {
  /** Host pid of the sandbox's init (PID 1 inside); killing it kills the sandbox. */
  pid: number;
  /** CLOCK_MONOTONIC ns taken right before the successful execve (comparable with process.hrtime.bigint()). */
  execAtNs: bigint;
  /** From just before spawning the launcher to execAtNs. */
  bootNs: bigint;
}

export interface SandboxError {
  stage: 'setup' | 'exec' | 'clone' | 'launcher';
  errno: number;
  /** e.g. ENOENT */
  code: string;
  message: string;
}

export interface SandboxExit {
  /** The program's exit code, or null when it died from a signal. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the cgroup recorded an OOM kill during this run. */
  oomKilled: boolean;
  /** Set when setup or execve failed (then code is 125, or 127 for "not found", 126 for "cannot execute"). */
  error?: SandboxError;
  /** Mount points the launcher created in the root (paths inside the sandbox). */
  stubs: string[];
  /** With removeStubs: whether they were all removed. */
  stubsRemoved?: boolean;
}

/** The errno names for the few numbers the launcher reports most. */
function errnoName(errno: number): string {
  for (const [name, value] of Object.entries(osConstants.errno)) if (value === errno) return name;
  return `E${errno}`;
}

function signalName(n: number): NodeJS.Signals | null {
  for (const [name, value] of Object.entries(osConstants.signals)) if (value === n) return name as NodeJS.Signals;
  return null;
}

/** The launcher's argv for a spec (exported for tests and for callers that log the command). */
export function launcherArgs(spec: SandboxSpec): string[] {
  if (spec.argv.length === 0) throw new TypeError('SandboxSpec.argv must not be empty');
  const a: string[] = ['--rootfs', spec.rootfs];
  if (spec.overlay) {
    if (spec.overlay.lower.length === 0) throw new TypeError('overlay.lower must not be empty');
    for (const l of spec.overlay.lower) a.push('--lower', l);
    a.push('--upper', spec.overlay.upper, '--work', spec.overlay.work);
    const cap = spec.overlay.upperTmpfsBytes;
    if (cap !== undefined) {
      if (!Number.isSafeInteger(cap) || cap < 4096) throw new RangeError('overlay.upperTmpfsBytes must be an integer of at least 4096');
      a.push('--upper-tmpfs-bytes', String(cap));
    }
  }
  if (spec.hostname !== undefined) a.push('--hostname', spec.hostname);
  if (spec.userNamespace) {
    const base = spec.userNamespace.hostIdBase;
    if (!Number.isSafeInteger(base) || base < 1 || base > 2 ** 32 - 1 - 65536) throw new RangeError('userNamespace.hostIdBase must be a host uid with 65536 ids above it');
    if (spec.overlay?.upperTmpfsBytes === undefined) throw new TypeError('userNamespace needs overlay.upperTmpfsBytes');
    a.push('--userns-base', String(base));
  }
  const net = spec.network ?? 'host';
  if (net === 'new') a.push('--new-netns');
  else if (net !== 'host') a.push('--netns', net.netnsPath);
  for (const dir of spec.cgroup?.joinDirs ?? []) a.push('--cgroup', dir);
  if (spec.uid !== undefined) a.push('--uid', String(spec.uid));
  if (spec.gid !== undefined) a.push('--gid', String(spec.gid));
  if (spec.groups && spec.groups.length > 0) a.push('--groups', spec.groups.join(','));
  if (spec.cwd !== undefined) a.push('--cwd', spec.cwd);
  for (const kv of spec.env ?? []) {
    if (!kv.includes('=')) throw new TypeError(`env entry must be K=V: ${kv}`);
    a.push('--env', kv);
  }
  if (spec.readonlyRoot) a.push('--readonly-root');
  if (spec.proc ?? true) a.push('--proc');
  if (spec.dev ?? true) a.push('--dev');
  if (spec.devpts) a.push('--devpts');
  for (const t of spec.tmpfs ?? []) a.push('--tmpfs', t);
  for (const b of spec.binds ?? []) {
    if (b.source.includes(':') || b.target.includes(':')) throw new TypeError('bind paths must not contain ":"');
    a.push('--bind', `${b.source}:${b.target}:${b.readonly ? 'ro' : 'rw'}`);
  }
  if (spec.removeStubs) a.push('--remove-stubs');
  if (spec.trace) a.push('--trace');
  a.push('--grace-ms', String(spec.graceMs ?? DEFAULT_STOP_GRACE_MS));
  a.push('--', ...spec.argv);
  return a;
}

/** Options of a pre-started launcher (`--spec-stdin`): what it needs before its spec arrives. */
export interface WarmLauncherOptions {
  /** Cgroup joined right away (the slow step a warm launcher takes off the start path). */
  cgroup?: Cgroup;
  graceMs?: number;
  trace?: boolean;
  removeStubs?: boolean;
  /** Read the spec from this fd (> 3) instead of stdin, which then stays the app's. */
  specFd?: number;
  /** The app's stdout/stderr pass through the launcher, which keeps the file it writes to at most this big (a regular file). */
  consoleMaxBytes?: number;
}

/**
 * Command line of a pre-started launcher: it joins the cgroup, reports `ready`,
 * and waits for `specPayload(spec)` on its stdin (EOF without one ends it).
 */
export function warmLauncherArgs(opts: WarmLauncherOptions): string[] {
  const a = opts.specFd === undefined ? ['--spec-stdin'] : ['--spec-fd', String(opts.specFd)];
  if (opts.removeStubs) a.push('--remove-stubs');
  if (opts.consoleMaxBytes !== undefined) {
    if (!Number.isSafeInteger(opts.consoleMaxBytes) || opts.consoleMaxBytes < 1) throw new RangeError('consoleMaxBytes must be a positive integer');
    a.push('--console-max-bytes', String(opts.consoleMaxBytes));
  }
  for (const dir of opts.cgroup?.joinDirs ?? []) a.push('--cgroup', dir);
  a.push('--grace-ms', String(opts.graceMs ?? DEFAULT_STOP_GRACE_MS));
  if (opts.trace) a.push('--trace');
  return a;
}

/**
 * The stdin payload for a pre-started launcher: the spec's arguments, each
 * NUL-terminated. The supervisor-level parts (cgroup, grace, trace, removeStubs)
 * were fixed at pre-start and must not be given here.
 */
export function specPayload(spec: SandboxSpec): Buffer {
  if (spec.cgroup || spec.removeStubs || spec.trace || spec.graceMs !== undefined) {
    throw new TypeError('cgroup, removeStubs, trace and graceMs belong to warmLauncherArgs');
  }
  const args = launcherArgs(spec);
  // launcherArgs always names the grace; the warm launcher already has it.
  const g = args.indexOf('--grace-ms');
  args.splice(g, 2);
  for (const arg of args) if (arg.includes('\0')) throw new TypeError('launcher arguments must not contain NUL');
  return Buffer.from(args.map((x) => `${x}\0`).join(''));
}

/** Parsed state of the launcher's event stream. */
export interface LauncherEvents {
  pid?: number;
  /** A pre-started launcher joined its cgroup and waits for its spec. */
  ready?: boolean;
  execAtNs?: bigint;
  error?: SandboxError;
  stubs: string[];
  cleanup?: boolean;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
}

/** Applies one event line to the state; unknown lines are ignored (forward compatibility). Returns the kind. */
export function applyEventLine(state: LauncherEvents, line: string): string | undefined {
  const [kind, ...rest] = line.split(' ');
  switch (kind) {
    case 'pid':
      state.pid = Number(rest[0]);
      return kind;
    case 'ready':
      state.ready = true;
      return kind;
    case 'exec':
      state.execAtNs = BigInt(rest[0] ?? '0');
      return kind;
    case 'stub':
      state.stubs.push(rest.slice(0, -2).join(' '));
      return kind;
    case 'error': {
      const stage = rest[0] === 'exec' || rest[0] === 'setup' || rest[0] === 'clone' ? rest[0] : 'setup';
      const errno = Number(rest[1]);
      state.error = { stage, errno, code: errnoName(errno), message: rest.slice(2).join(' ') };
      return kind;
    }
    case 'cleanup':
      state.cleanup = rest[0] === 'ok';
      return kind;
    case 'exit':
      state.exit = rest[0] === 'signal' ? { code: null, signal: signalName(Number(rest[1])) } : { code: Number(rest[1]), signal: null };
      return kind;
    default:
      return undefined;
  }
}

export interface SandboxProcessEvents {
  started: [SandboxStarted];
  exit: [SandboxExit];
}

/** A running sandbox. Listen to 'started' and 'exit', or await `started` / `exited`. */
export class SandboxProcess extends EventEmitter<SandboxProcessEvents> {
  readonly stdout: Readable | null;
  readonly stderr: Readable | null;
  readonly stdin: Writable | null;
  /** Resolves at successful exec; rejects with the SandboxExit when the program never started. */
  readonly started: Promise<SandboxStarted>;
  readonly exited: Promise<SandboxExit>;
  private readonly child: ChildProcess;
  private readonly state: LauncherEvents = { stubs: [] };
  private killTimer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(spec: SandboxSpec) {
    super();
    const launcher = spec.launcherPath ?? DEFAULT_LAUNCHER_PATH;
    if (!existsSync(launcher)) throw new Error(`sandbox launcher not found at ${launcher} (run npm run build)`);
    // Env and argv may hold secrets: they go over a pipe (fd 4), never on the launcher's command line.
    const { cgroup, removeStubs, trace, graceMs, ...rest } = spec;
    const payload = specPayload(rest);
    const args = warmLauncherArgs({
      specFd: SPEC_FD,
      graceMs: graceMs ?? DEFAULT_STOP_GRACE_MS,
      ...(cgroup ? { cgroup } : {}),
      ...(removeStubs ? { removeStubs } : {}),
      ...(trace ? { trace } : {}),
    });
    const oomBefore = spec.cgroup?.oomKillCount() ?? 0;
    const spawnAt = process.hrtime.bigint();
    this.child = spawn(launcher, args, {
      stdio: [spec.stdin ?? 'ignore', spec.stdout ?? 'pipe', spec.stderr ?? 'pipe', 'pipe', 'pipe'],
      env: {},
    });
    const specPipe = this.child.stdio[SPEC_FD] as Writable | null;
    specPipe?.on('error', () => undefined); // a launcher that died early: its exit says why
    specPipe?.end(payload);
    this.stdout = this.child.stdout;
    this.stderr = this.child.stderr;
    this.stdin = this.child.stdin;
    let resolveStarted: (s: SandboxStarted) => void = () => undefined;
    let rejectStarted: (e: SandboxExit) => void = () => undefined;
    this.started = new Promise((res, rej) => {
      resolveStarted = res;
      rejectStarted = rej;
    });
    this.started.catch(() => undefined); // callers that only await `exited` must not see an unhandled rejection
    let resolveExited: (e: SandboxExit) => void = () => undefined;
    this.exited = new Promise((res) => (resolveExited = res));

    const events = this.child.stdio[3] as Readable;
    let buffered = '';
    events.setEncoding('utf8');
    events.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (applyEventLine(this.state, line) === 'exec' && this.state.execAtNs !== undefined && this.state.pid !== undefined) {
          const s: SandboxStarted = { pid: this.state.pid, execAtNs: this.state.execAtNs, bootNs: this.state.execAtNs - spawnAt };
          resolveStarted(s);
          this.emit('started', s);
        }
      }
    });
    let spawnError: Error | undefined;
    this.child.on('error', (e) => (spawnError = e));
    // 'close' fires after the process exited and every stdio stream (incl. events) ended.
    this.child.on('close', (code, signal) => {
      this.done = true;
      if (this.killTimer) clearTimeout(this.killTimer);
      const ex = this.state.exit ?? { code: signal ? null : code, signal: signal ?? null };
      const result: SandboxExit = {
        code: ex.code,
        signal: ex.signal,
        oomKilled: spec.cgroup ? spec.cgroup.oomKillCount() > oomBefore : false,
        stubs: this.state.stubs,
      };
      if (this.state.error) result.error = this.state.error;
      else if (spawnError) result.error = { stage: 'launcher', errno: 0, code: 'ELAUNCH', message: spawnError.message };
      if (this.state.cleanup !== undefined) result.stubsRemoved = this.state.cleanup;
      if (this.state.execAtNs === undefined || this.state.error) rejectStarted(result);
      resolveExited(result);
      this.emit('exit', result);
    });
  }

  /** Host pid of the sandbox's init, once known. */
  get pid(): number | undefined {
    return this.state.pid;
  }

  /** SIGTERM to everything inside; after graceMs, kill everything. Resolves on exit. */
  stop(graceMs = DEFAULT_STOP_GRACE_MS): Promise<SandboxExit> {
    if (!this.done) {
      this.child.kill('SIGTERM');
      if (!this.killTimer) this.killTimer = setTimeout(() => this.kill(), graceMs);
    }
    return this.exited;
  }

  /** Kill everything inside now. Resolves on exit. */
  kill(): Promise<SandboxExit> {
    if (!this.done) this.child.kill('SIGUSR1');
    return this.exited;
  }
}

export function spawnSandbox(spec: SandboxSpec): SandboxProcess {
  return new SandboxProcess(spec);
}
