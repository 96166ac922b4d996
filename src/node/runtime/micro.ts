/**
 * The `micro` runtime: each instance is one sandbox of the native launcher
 * (src/sandbox): fresh mount, pid, uts, ipc, net and cgroup namespaces; the
 * image's read-only rootfs under a private writable overlay layer; a cgroup
 * with memory (memory_mb), CPU (vcpus) and pid limits; its own netns with a
 * private IP on the node bridge; `/etc/hosts` a read-only bind of the node's
 * hosts file. It is a Linux sandbox, not a VM.
 *
 * Survival across a restart of the node (decision 6): the launcher is started
 * detached (own session, no pipes to the node): stdout/stderr go to
 * `<runDir>/console`, launcher events to `<runDir>/events` (a file). The
 * launcher caps the console file itself (consoleFileMaxBytes), so the cap holds
 * while the node is down; the writable layer is a tmpfs of writableLayerMaxBytes
 * inside the run's mount namespace (nothing of it lands in `<runDir>/upper` on
 * the host disk). Env and args reach the launcher over a pipe (closed once
 * written), never on its command line. The run is identified by `runtimeRef` = JSON {pid, start (the /proc start time, so a
 * recycled pid is never mistaken for the run), runDir, cgroup, netns, ip}.
 * `adopt` checks the pid and its start time, then tails the same files.
 *
 * User namespaces: each run's app has its own (uid/gid 0..65535 inside are a
 * host range of its own from micro/host-ids.ts, recorded in ref.json); the
 * launcher idmaps the image's layers so files keep the image's owners (see
 * ukc-sandbox/userns.c).
 *
 * Warm launchers: `start` takes a pre-started launcher from the pool
 * (micro/pool.ts, which says why); with the pool empty it spawns one itself.
 * /proc readers live in micro/procfs.ts.
 *
 * Invariants:
 *  - One run per instance uuid at a time; its directory is `<runsDir>/<uuid>`
 *    and is removed (with cgroup, netns and lease) once the run ended.
 *  - Recovery: `adopt` keeps a run only when its launcher is the recorded process and
 *    its init is in the netns of the instance's lease (the address reported is that
 *    lease's, never the record's); `sweep`, called once adoption is over, kills and
 *    removes every cgroup, netns + lease and run directory a previous process left
 *    that no adopted run owns (a start cut by kill -9 leaves an orphaned launcher).
 *  - `exited` fires exactly once per run (after cleanup), `started` before it.
 *  - Stateful scale-to-zero: a run can `freeze` (cgroup freezer over its whole
 *    cgroup: no CPU, memory, sockets and files kept) and `thaw`. A frozen v1
 *    task cannot die (signals stay pending), so every way a run ends — stop,
 *    kill, cleanup — thaws first. Frozen state lives in the kernel, not in the
 *    node: a run adopted after a node restart is still frozen (the lifecycle
 *    keeps it so, see the top of instances/lifecycle.ts); `cleanup` thaws and
 *    removes the v1 freezer directory whatever the node believed.
 *  - boot_time_us counts from `start()` being called (network, cgroup, spawn or
 *    spec hand-over included) to right before the app's execve; net_time_us from the same
 *    instant until a TCP socket listens on a non-loopback address in the
 *    instance's netns (seen by polling /proc/<pid>/net/tcp{,6}).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import { closeSync, existsSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, readlinkSync, readSync, renameSync, rmSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Cgroup,
  CgroupFreezer,
  cgroupChildren,
  detectCgroupLayout,
  freezerMountPoint,
  mountsUnder,
  unmount,
  specPayload,
  warmLauncherArgs,
  SPEC_FD,
  DEFAULT_LAUNCHER_PATH,
  type CgroupLayout,
  type CgroupLimits,
  type CgroupOptions,
  type SandboxSpec,
} from '../../sandbox/index.js';
import { applyEventLine, type LauncherEvents } from '../../sandbox/index.js';
import { Errno, NodeError } from '../errors.js';
import type { NodeNetwork } from '../network/index.js';
import type { AdoptRequest, InstanceSpec, RuntimeDriver, RuntimeHooks, RuntimeStats, SweepReport } from './driver.js';
import type { FreezableHandle } from '../instances/lifecycle.js';
import { LauncherPool } from './micro/pool.js';
import { HostIdRanges } from './micro/host-ids.js';
import { hasNonLoopbackListener, processStartTime } from './micro/procfs.js';

export { hasNonLoopbackListener, processStartTime };

export interface MicroDriverLimits {
  /** Most processes (threads included) one instance may have. */
  pidsMax: number;
  /** How long net_time_us is probed for after start. */
  netProbeTimeoutMs: number;
  /** Listener probe interval right after a start… */
  netProbeFastMs: number;
  /** …for this long, then the interval grows by half each tick… */
  netProbeFastWindowMs: number;
  /** …up to this. */
  netProbeMaxIntervalMs: number;
  /** Listener probes the driver runs per ms across all starts: with many starts at once each probes less often, so the probes cannot saturate the event loop. */
  netProbeTicksPerMs: number;
  /** How often an adopted run's liveness is checked (its exit line usually arrives first). */
  livenessPollMs: number;
  /** Console bytes kept on disk: the launcher cuts the file before it would grow past this, node up or down (the controller keeps its own ring). */
  consoleFileMaxBytes: number;
  /** Each instance in its own user namespace (uid 0 inside is an unprivileged host uid); false = share the host's (no reason to, but a switch for old kernels). */
  userNamespaces: boolean;
  /** First host uid/gid given to instances' user namespaces (65536 per instance). */
  userNamespaceFirstHostId: number;
  /** How many 65536-id ranges exist (so at most this many instances run at once). */
  userNamespaceRanges: number;
  /** Size of the tmpfs holding an instance's writable layer (in memory like upstream, charged to its memory cgroup); writes past it get ENOSPC. */
  writableLayerMaxBytes: number;
  /** Launchers kept pre-started (in a fresh cgroup, waiting for their spec); 0 = spawn each on demand. */
  launcherPoolSize: number;
  /** How long a pre-started launcher may take to report `ready` before it is dropped. */
  launcherReadyTimeoutMs: number;
}

export const DEFAULT_MICRO_LIMITS: MicroDriverLimits = {
  pidsMax: 512,
  netProbeTimeoutMs: 30_000,
  netProbeFastMs: 1,
  netProbeFastWindowMs: 100,
  netProbeMaxIntervalMs: 50,
  netProbeTicksPerMs: 4,
  livenessPollMs: 1000,
  consoleFileMaxBytes: 1024 * 1024,
  writableLayerMaxBytes: 256 * 1024 * 1024,
  userNamespaces: true,
  userNamespaceFirstHostId: 1_000_000,
  userNamespaceRanges: 4096,
  launcherPoolSize: 8,
  launcherReadyTimeoutMs: 5000,
};

/** The launcher's own stop grace: only a backstop, stops are timed by the node (stop(graceMs)). */
const STOP_BACKSTOP_MS = 24 * 3600 * 1000;

export interface MicroDriverOptions {
  /** Per-run directories live here. */
  runsDir: string;
  network?: NodeNetwork;
  /** Cgroup parent path inside each hierarchy, e.g. /ukc-node. */
  cgroupParent: string;
  cgroupLayout?: CgroupLayout;
  launcherPath?: string;
  limits?: Partial<MicroDriverLimits>;
}

interface RunRef {
  v: 1;
  pid: number;
  start: string;
  runDir: string;
  cgroup: string;
  netns: boolean;
  ip?: string;
  uuid: string;
  oomBefore: number;
  /** Host uid/gid that uid/gid 0 inside maps to (runs/micro/host-ids.ts); absent without a user namespace. */
  idBase?: number;
}

/**
 * With UKC_BOOT_TRACE=1 in the node's environment, each start prints where its
 * microseconds went (since start() was called) to stderr: a profiling aid only.
 */
const BOOT_TRACE = process.env['UKC_BOOT_TRACE'] === '1';

function bootTracer(uuid: string, t0: bigint): (mark: string) => void {
  if (!BOOT_TRACE) return () => undefined;
  return (mark) => process.stderr.write(`[boot-trace] ${uuid.slice(0, 8)} ${mark} +${hrUs(t0, process.hrtime.bigint())}us\n`);
}

function hrUs(from: bigint, to: bigint): number {
  return Math.max(0, Math.round(Number(to - from) / 1000));
}

class MicroRun implements FreezableHandle {
  readonly runtimeRef: string;
  private readonly events: LauncherEvents = { stubs: [] };
  private eventsOffset = 0;
  private consoleOffset = 0;
  private watchers: FSWatcher[] = [];
  private timers = new Set<NodeJS.Timeout>();
  private detached = false;
  private finished = false;
  private startedSent: boolean;
  private pendingNetTimeUs: number | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  /** Ends the listener probe's share of the driver's probe budget. */
  private endProbe: (() => void) | undefined;
  private freezer: CgroupFreezer | undefined;

  /** The address this run holds (its lease's); for an adopted run, checked against its netns. */
  privateIp: string | undefined;

  constructor(
    private readonly driver: MicroDriver,
    readonly ref: RunRef,
    private readonly cgroup: Cgroup,
    private readonly hooks: RuntimeHooks,
    private readonly t0: bigint | undefined,
    alreadyStarted: boolean,
  ) {
    this.runtimeRef = JSON.stringify(ref);
    this.startedSent = alreadyStarted;
    this.privateIp = ref.ip;
  }

  /** The host pid of the run's init (inside the sandbox), once the launcher reported it. */
  get initPid(): number | undefined {
    return this.events.pid;
  }

  get eventsPath(): string {
    return join(this.ref.runDir, 'events');
  }

  get consolePath(): string {
    return join(this.ref.runDir, 'console');
  }

  /** Begins following the run's files; `fromConsoleEnd` skips output that was already delivered before. */
  follow(fromConsoleEnd: boolean): void {
    if (fromConsoleEnd) {
      try {
        const fd = openSync(this.consolePath, 'r');
        this.consoleOffset = fstatSync(fd).size;
        closeSync(fd);
      } catch {
        this.consoleOffset = 0;
      }
    }
    for (const path of [this.eventsPath, this.consolePath]) {
      try {
        this.watchers.push(watch(path, { persistent: false }, () => this.poll()));
      } catch {
        // The file vanished: the run is over; poll() below settles it.
      }
    }
    this.poll();
  }

  /** Reads new event lines and console bytes; settles the run once the exit line (or the process end) is seen. */
  poll(): void {
    if (this.detached || this.finished) return;
    this.readConsole();
    const lines = this.readNew(this.eventsPath, 'events');
    for (const line of lines) {
      if (BOOT_TRACE && line.startsWith('mark ') && this.t0 !== undefined) {
        const [, stage, ns] = line.split(' ');
        process.stderr.write(`[boot-trace] ${this.ref.uuid.slice(0, 8)} launcher:${stage} +${hrUs(this.t0, BigInt(ns ?? '0'))}us\n`);
      }
      const kind = applyEventLine(this.events, line);
      if (kind === 'exec' && !this.startedSent && this.events.execAtNs !== undefined && this.t0 !== undefined) {
        this.startedSent = true;
        const started: { type: 'started'; bootTimeUs: number; privateIp?: string } = { type: 'started', bootTimeUs: hrUs(this.t0, this.events.execAtNs) };
        if (this.ref.ip) started.privateIp = this.ref.ip;
        this.hooks.onEvent(started);
        if (BOOT_TRACE) process.stderr.write(`[boot-trace] ${this.ref.uuid.slice(0, 8)} exec +${started.bootTimeUs}us (seen +${hrUs(this.t0, process.hrtime.bigint())}us)\n`);
        this.sendListening();
      }
    }
    if (this.events.exit || this.events.error) {
      if (this.events.exit) void this.finish();
    }
  }

  /** Called when the launcher process is known to be gone (child exit, or liveness poll). */
  gone(): void {
    if (this.detached || this.finished) return;
    this.poll();
    if (!this.finished) void this.finish();
  }

  private readNew(path: string, which: 'events'): string[] {
    void which;
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      return [];
    }
    try {
      const size = fstatSync(fd).size;
      if (size <= this.eventsOffset) return [];
      const buf = Buffer.alloc(size - this.eventsOffset);
      const n = readSync(fd, buf, 0, buf.length, this.eventsOffset);
      const text = buf.subarray(0, n).toString('utf8');
      const last = text.lastIndexOf('\n');
      if (last < 0) return [];
      this.eventsOffset += Buffer.byteLength(text.slice(0, last + 1));
      return text.slice(0, last).split('\n');
    } finally {
      closeSync(fd);
    }
  }

  private readConsole(): void {
    let fd: number;
    try {
      fd = openSync(this.consolePath, 'r+');
    } catch {
      return;
    }
    try {
      const size = fstatSync(fd).size;
      if (size < this.consoleOffset) this.consoleOffset = 0;
      while (size > this.consoleOffset) {
        const buf = Buffer.alloc(Math.min(size - this.consoleOffset, 256 * 1024));
        const n = readSync(fd, buf, 0, buf.length, this.consoleOffset);
        if (n <= 0) break;
        this.consoleOffset += n;
        this.hooks.onOutput(buf.subarray(0, n));
      }
      // The app writes with O_APPEND, so cutting the file makes its next write land at 0.
      if (this.consoleOffset > this.driver.limits.consoleFileMaxBytes) {
        ftruncateSync(fd, 0);
        this.consoleOffset = 0;
      }
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Watches for a non-loopback listener from the moment the run is handed over
   * (not from when the exec line happens to be noticed): every `netProbeFastMs`
   * during the first `netProbeFastWindowMs`, then backing off to
   * `netProbeMaxIntervalMs`, for at most `netProbeTimeoutMs`. Each tick first
   * reads new event lines (so `started` goes out as early as possible), and reads
   * /proc/<init>/net/tcp{,6} only once init is inside the instance's netns (same
   * nsfs inode), so a listener of the host can never count.
   */
  probeNet(t0: bigint, netnsPath: string): void {
    let want: string;
    try {
      want = `net:[${statSync(netnsPath).ino}]`;
    } catch {
      return;
    }
    const limits = this.driver.limits;
    const begin = Date.now();
    let delay = limits.netProbeFastMs;
    this.driver.activeProbes++;
    let probing = true;
    const done = (): void => {
      if (probing) this.driver.activeProbes--;
      probing = false;
    };
    this.endProbe = done;
    const tick = (): void => {
      if (this.finished || this.detached) return done();
      this.poll();
      if (this.finished || this.events.error) return done();
      const pid = this.events.pid;
      if (pid !== undefined) {
        let found = false;
        try {
          if (readlinkSync(`/proc/${pid}/ns/net`) === want) {
            found = hasNonLoopbackListener(readFileSync(`/proc/${pid}/net/tcp`, 'utf8'), false) ||
              hasNonLoopbackListener(readFileSync(`/proc/${pid}/net/tcp6`, 'utf8'), true);
          }
        } catch {
          // init is not there yet or already gone; the events tell which
        }
        if (found) {
          this.pendingNetTimeUs = hrUs(t0, process.hrtime.bigint());
          this.sendListening();
          return done();
        }
      }
      const elapsed = Date.now() - begin;
      if (elapsed > limits.netProbeTimeoutMs) return done();
      if (elapsed > limits.netProbeFastWindowMs) delay = Math.min(Math.ceil(delay * 1.5), limits.netProbeMaxIntervalMs);
      this.later(Math.max(delay, Math.ceil(this.driver.activeProbes / limits.netProbeTicksPerMs)), tick);
    };
    tick();
  }

  /** `listening` only ever follows `started` (the driver contract); until then it waits here. */
  private sendListening(): void {
    if (!this.startedSent || this.pendingNetTimeUs === undefined) return;
    const netTimeUs = this.pendingNetTimeUs;
    this.pendingNetTimeUs = undefined;
    this.hooks.onEvent({ type: 'listening', netTimeUs });
    if (BOOT_TRACE) process.stderr.write(`[boot-trace] ${this.ref.uuid.slice(0, 8)} listening +${netTimeUs}us\n`);
  }

  later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** Liveness polling for a run that is not our child (adopted). */
  watchLiveness(): void {
    const check = (): void => {
      if (this.finished || this.detached) return;
      if (processStartTime(this.ref.pid) !== this.ref.start) this.gone();
      else this.later(this.driver.limits.livenessPollMs, check);
    };
    this.later(this.driver.limits.livenessPollMs, check);
  }

  private async finish(): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    this.stopFollowing();
    const oom = this.cgroup.oomKillCount() > this.ref.oomBefore;
    const exit = this.events.exit ?? { code: null, signal: 'SIGKILL' as NodeJS.Signals };
    await this.driver.cleanup(this.ref, this.cgroup);
    if (this.detached) return;
    this.hooks.onEvent({ type: 'exited', code: exit.code, signal: exit.signal, oom });
  }

  private stopFollowing(): void {
    this.endProbe?.();
    for (const w of this.watchers) w.close();
    this.watchers = [];
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    if (this.killTimer) clearTimeout(this.killTimer);
  }

  private signal(sig: NodeJS.Signals): void {
    // Never pid 0 or below: kill() would signal a whole process group.
    if (!(this.ref.pid > 0) || processStartTime(this.ref.pid) !== this.ref.start) return;
    try {
      process.kill(this.ref.pid, sig);
    } catch {
      // already gone
    }
  }

  /** Freezes every process of the run's cgroup; resolves once the kernel reports it frozen. */
  async freeze(): Promise<void> {
    if (this.finished) throw new Error('the run has ended');
    this.freezer ??= this.driver.freezerFor(this.cgroup);
    await this.freezer.freeze();
  }

  async thaw(): Promise<void> {
    this.thawForExit();
  }

  /** Frozen tasks cannot act on a signal: every stop, kill and cleanup thaws first (idempotent). */
  private thawForExit(): void {
    (this.freezer ?? this.driver.existingFreezerFor(this.cgroup))?.thaw();
  }

  async stop(graceMs: number): Promise<void> {
    this.thawForExit();
    this.signal('SIGTERM');
    if (!this.killTimer) {
      this.killTimer = setTimeout(() => {
        this.thawForExit();
        this.signal('SIGUSR1');
      }, Math.max(0, graceMs));
      this.killTimer.unref();
    }
  }

  async kill(): Promise<void> {
    this.thawForExit();
    this.signal('SIGUSR1');
  }

  async stats(): Promise<RuntimeStats> {
    const s = this.cgroup.stats();
    return { rssBytes: s.memoryBytes, cpuTimeUs: s.cpuUsageUs };
  }

  detach(): void {
    this.detached = true;
    this.stopFollowing();
  }
}

export class MicroDriver implements RuntimeDriver {
  readonly limits: MicroDriverLimits;
  private readonly pool: LauncherPool;
  readonly hostIds: HostIdRanges;
  /** Listener probes running now (they share netProbeTicksPerMs). */
  activeProbes = 0;
  /** Last failure of recovery's sweep (diagnostics). */
  lastSweepError: Error | undefined;
  /** What a previous node process left (cgroups and run dirs), seen at init before anything new was made. */
  private leftovers: { cgroups: string[]; runDirs: string[] } = { cgroups: [], runDirs: [] };
  /** uuid → cgroup name of every run adopted by this process (the sweep keeps them). */
  private readonly adoptedCgroups = new Map<string, string>();

  constructor(private readonly options: MicroDriverOptions) {
    this.limits = { ...DEFAULT_MICRO_LIMITS, ...options.limits };
    this.hostIds = new HostIdRanges(this.limits.userNamespaceFirstHostId, this.limits.userNamespaceRanges);
    this.pool = new LauncherPool({
      runsDir: options.runsDir,
      launcherPath: options.launcherPath ?? DEFAULT_LAUNCHER_PATH,
      size: this.limits.launcherPoolSize,
      readyTimeoutMs: this.limits.launcherReadyTimeoutMs,
      graceMs: STOP_BACKSTOP_MS,
      trace: BOOT_TRACE,
      consoleMaxBytes: this.limits.consoleFileMaxBytes,
      cgroupOptions: () => this.cgroupOptions(),
    });
  }

  /** Last failure to pre-start a launcher (diagnostics; starts then spawn on demand). */
  get lastPoolError(): Error | undefined {
    return this.pool.lastError;
  }

  private cgroupOptions(): CgroupOptions {
    return { parent: this.options.cgroupParent, ...(this.options.cgroupLayout ? { layout: this.options.cgroupLayout } : {}) };
  }

  private instanceLimits(spec: InstanceSpec): CgroupLimits {
    return { memoryBytes: spec.memoryMb * 1024 * 1024, vcpus: spec.vcpus, pidsMax: this.limits.pidsMax };
  }

  /** Pre-started launchers ready right now (tests, diagnostics). */
  get warmReady(): number {
    return this.pool.ready;
  }

  /** Removes pool leftovers of a previous node process, then starts filling the launcher pool. */
  async init(): Promise<void> {
    // Before the pool makes anything: every cgroup and run dir now is a previous process's.
    const layout = this.options.cgroupLayout ?? detectCgroupLayout();
    const freezerParent = layout.version === 1 && this.freezerMount() !== undefined ? join(this.freezerMount() as string, this.options.cgroupParent) : undefined;
    const freezerNames = freezerParent !== undefined && existsSync(freezerParent) ? (await readdir(freezerParent, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => d.name) : [];
    this.leftovers = {
      cgroups: [...new Set([...cgroupChildren(this.options.cgroupParent, layout), ...freezerNames])].filter((n) => /^(i-[0-9a-f-]{36}|p-[0-9a-f]{16})$/.test(n)),
      runDirs: (await readdir(this.options.runsDir).catch(() => [] as string[])).filter((n) => /^[0-9a-f-]{36}$/.test(n)),
    };
    // Runs started from the pool keep its p-<id> cgroup: a dead one is swept like any other
    // (new pool slots get new ids, so nothing made from here on is in the list).
    await this.pool.init();
    // Ranges recorded by runs of a previous node process stay taken until those runs are adopted or cleaned up.
    for (const entry of await readdir(this.options.runsDir).catch(() => [] as string[])) {
      const ref = await readFile(join(this.options.runsDir, entry, 'ref.json'), 'utf8').then((t) => JSON.parse(t) as Partial<RunRef>, () => undefined);
      if (typeof ref?.idBase === 'number') this.hostIds.reserve(ref.idBase);
    }
  }

  /**
   * Recovery's sweep, once every run that could be adopted was: kills and removes what dead runs
   * of a previous process left — cgroups (an orphaned launcher whose start never reached the
   * record included: it would keep an address on the bridge), then netns and leases, then run
   * directories (with anything mounted under them). `keep`: the instances whose runs were adopted.
   */
  async sweep(keep: ReadonlySet<string>): Promise<SweepReport> {
    const kept = new Set([...this.adoptedCgroups].filter(([uuid]) => keep.has(uuid)).map(([, cg]) => cg));
    const report: SweepReport = { cgroups: 0, networks: 0, runDirs: 0 };
    for (const name of this.leftovers.cgroups) {
      if (kept.has(name)) continue;
      try {
        const cgroup = Cgroup.create(name, {}, this.cgroupOptions());
        const freezer = this.existingFreezerFor(cgroup);
        freezer?.thaw();
        await cgroup.destroy();
        if (freezer && cgroup.layout.version === 1) await freezer.remove();
        report.cgroups++;
      } catch (err) {
        this.lastSweepError = err as Error;
      }
    }
    if (this.options.network) report.networks = (await this.options.network.sweep(keep)).length;
    for (const name of this.leftovers.runDirs) {
      if (keep.has(name)) continue;
      const dir = join(this.options.runsDir, name);
      for (const m of mountsUnder(dir).reverse()) await unmount(m.mountPoint, { lazyFallback: true }).catch(() => undefined);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
      report.runDirs++;
    }
    this.leftovers = { cgroups: [], runDirs: [] };
    return report;
  }

  /** Resolves once the launcher pool is full (or a refill failed). */
  async poolFilled(): Promise<void> {
    await this.pool.filled();
  }

  /** Stops refilling and ends every pre-started launcher (their cgroups and dirs go too); runs are left alone. */
  async close(): Promise<void> {
    await this.pool.close();
  }

  /** The freezer of a run's cgroup (v1: its directory in the freezer hierarchy, made if missing). */
  freezerFor(cgroup: Cgroup): CgroupFreezer {
    return CgroupFreezer.forCgroup(cgroup, { parent: this.options.cgroupParent });
  }

  /**
   * The freezer of a run's cgroup if one may be holding it: v2 always (the group's
   * own directory), v1 only when its freezer directory exists (never made here).
   */
  existingFreezerFor(cgroup: Cgroup): CgroupFreezer | undefined {
    if (cgroup.layout.version === 2) return this.freezerFor(cgroup);
    const mount = this.freezerMount();
    if (mount === undefined || !existsSync(join(mount, this.options.cgroupParent, cgroup.name))) return undefined;
    try {
      return this.freezerFor(cgroup);
    } catch {
      return undefined;
    }
  }

  private freezerMountCache: string | null | undefined;

  private freezerMount(): string | undefined {
    if (this.freezerMountCache === undefined) {
      try {
        this.freezerMountCache = freezerMountPoint(readFileSync('/proc/self/mountinfo', 'utf8')) ?? null;
      } catch {
        this.freezerMountCache = null;
      }
    }
    return this.freezerMountCache ?? undefined;
  }

  async start(spec: InstanceSpec, hooks: RuntimeHooks): Promise<FreezableHandle> {
    const t0 = process.hrtime.bigint();
    const lower = spec.rootfs.path;
    if ((spec.rootfs.kind !== 'erofs' && spec.rootfs.kind !== 'cpio') || typeof lower !== 'string') {
      throw new NodeError(Errno.EINVAL, `the micro runtime cannot run a rootfs of kind ${spec.rootfs.kind}`);
    }
    if (spec.args.length === 0) throw new NodeError(Errno.EINVAL, 'the image has no command and none was given (args)');
    const trace = bootTracer(spec.uuid, t0);
    const runDir = join(this.options.runsDir, spec.uuid);
    const warm = this.pool.take();
    if (warm) this.pool.refill();
    // Synchronous on purpose: no await may let background work (a refill's spawn) in before the hand-over.
    if (existsSync(runDir)) rmSync(runDir, { recursive: true, force: true });
    if (warm) renameSync(warm.dir, runDir);
    else for (const sub of ['upper', 'work', 'root']) mkdirSync(join(runDir, sub), { recursive: true });
    trace(warm ? 'dirs (warm)' : 'dirs');
    let cgroup: Cgroup | undefined;
    let attachment: Awaited<ReturnType<NodeNetwork['attach']>> | undefined;
    let idBase: number | undefined;
    try {
      if (warm) {
        cgroup = warm.cgroup;
        cgroup.setLimits(this.instanceLimits(spec));
      } else {
        cgroup = Cgroup.create(`i-${spec.uuid}`, this.instanceLimits(spec), this.cgroupOptions());
      }
      trace('cgroup');
      if (this.options.network) attachment = await this.options.network.attach(spec.uuid, spec.name, spec.owner);
      trace('network');
      if (this.limits.userNamespaces) {
        try {
          idBase = this.hostIds.take();
        } catch (err) {
          throw new NodeError(Errno.ENOSPC, (err as Error).message);
        }
      }
      const sandbox: SandboxSpec = {
        rootfs: join(runDir, 'root'),
        overlay: { lower: [lower], upper: join(runDir, 'upper'), work: join(runDir, 'work'), upperTmpfsBytes: this.limits.writableLayerMaxBytes },
        argv: spec.args,
        env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
        hostname: spec.name.slice(0, 63),
        ...(idBase !== undefined ? { userNamespace: { hostIdBase: idBase } } : {}),
        network: attachment ? { netnsPath: attachment.netnsPath } : 'new',
        binds: this.options.network ? [{ source: this.options.network.hostsPathFor(spec.owner), target: '/etc/hosts', readonly: true }] : [],
      };
      // NUL cannot reach a program (create refuses it in the request; this catches an image's own Cmd/Env).
      if ([...sandbox.argv, ...(sandbox.env ?? [])].some((x) => x.includes('\0'))) {
        throw new NodeError(Errno.EINVAL, 'args and env must not contain NUL bytes');
      }
      const payload = specPayload(sandbox);
      const oomBefore = cgroup.oomKillCount();
      let child: ChildProcess;
      let pid: number;
      let start: string;
      if (warm) {
        child = warm.child;
        pid = warm.pid;
        start = warm.start;
        child.stdin?.end(payload);
      } else {
        const consoleFd = openSync(join(runDir, 'console'), 'a', 0o600);
        const eventsFd = openSync(join(runDir, 'events'), 'a', 0o600);
        try {
          // Stops are timed by the node (stop(graceMs)); the launcher's own grace is only a backstop.
          // Env and args (secrets) go over a pipe on SPEC_FD, never on the command line.
          child = spawn(this.options.launcherPath ?? DEFAULT_LAUNCHER_PATH, warmLauncherArgs({ cgroup, graceMs: STOP_BACKSTOP_MS, trace: BOOT_TRACE, specFd: SPEC_FD, consoleMaxBytes: this.limits.consoleFileMaxBytes }), {
            detached: true,
            stdio: ['ignore', consoleFd, consoleFd, eventsFd, 'pipe'],
            env: {},
          });
        } finally {
          closeSync(consoleFd);
          closeSync(eventsFd);
        }
        if (child.pid === undefined) throw new NodeError(Errno.EIO, 'the sandbox launcher could not be started');
        const specPipe = child.stdio[SPEC_FD] as Writable | null;
        specPipe?.on('error', () => undefined); // a launcher that died early: its exit line says why
        specPipe?.end(payload);
        pid = child.pid;
        start = processStartTime(pid) ?? '0';
      }
      trace(warm ? 'spec sent' : 'spawned');
      const ref: RunRef = { v: 1, pid, start, runDir, cgroup: cgroup.name, netns: attachment !== undefined, uuid: spec.uuid, oomBefore };
      if (attachment) ref.ip = attachment.ip;
      if (idBase !== undefined) ref.idBase = idBase;
      // Synchronous: a tiny file, and an async write queues behind the libuv pool (hundreds of ms in a burst of starts).
      writeFileSync(join(runDir, 'ref.json'), JSON.stringify(ref));
      const run = new MicroRun(this, ref, cgroup, hooks, t0, false);
      if (warm && (child.exitCode !== null || child.signalCode !== null)) queueMicrotask(() => run.gone());
      child.on('exit', () => run.gone());
      child.on('error', () => run.gone());
      child.unref();
      run.follow(false);
      if (attachment) {
        run.probeNet(t0, attachment.netnsPath);
        // The tenant rules land while the app starts (until then its peers cannot reach it, nor it them: closed, never open).
        // Rules that cannot be set end the run, reported like a crash.
        attachment.ready.catch(() => void run.kill().catch(() => undefined));
      }
      trace('returned');
      return run;
    } catch (err) {
      if (warm && warm.pid > 0) {
        try {
          process.kill(warm.pid, 'SIGKILL');
        } catch {
          // gone already
        }
      }
      if (cgroup) await cgroup.destroy().catch(() => undefined);
      if (attachment) await this.options.network?.detach(spec.uuid).catch(() => undefined);
      await rm(runDir, { recursive: true, force: true }).catch(() => undefined);
      this.hostIds.release(idBase);
      throw err;
    }
  }

  async adopt(request: AdoptRequest, hooks: RuntimeHooks): Promise<(FreezableHandle & { privateIp: string | undefined }) | undefined> {
    let ref: RunRef;
    try {
      ref = JSON.parse(request.runtimeRef) as RunRef;
    } catch {
      return undefined;
    }
    if (ref.v !== 1 || ref.uuid !== request.uuid || !Number.isInteger(ref.pid) || typeof ref.runDir !== 'string') return undefined;
    if (ref.runDir !== join(this.options.runsDir, request.uuid)) return undefined;
    // A run from a warm launcher keeps the pool's cgroup name (p-<id>); older runs used i-<uuid>.
    const cgroupName = typeof ref.cgroup === 'string' && /^(i-[0-9a-f-]{36}|p-[0-9a-f]{16})$/.test(ref.cgroup) ? ref.cgroup : `i-${request.uuid}`;
    const cgroup = Cgroup.create(cgroupName, {}, this.cgroupOptions());
    if (ref.idBase !== undefined && !this.hostIds.reserve(ref.idBase)) delete ref.idBase; // not one of ours: never released into the pool
    const alive = processStartTime(ref.pid) === ref.start && existsSync(ref.runDir);
    if (!alive) {
      await this.cleanup(ref, cgroup);
      return undefined;
    }
    const run = new MicroRun(this, ref, cgroup, hooks, undefined, true);
    run.follow(true);
    if (ref.netns && this.options.network) {
      // The address comes from the kernel's truth: the lease whose netns the run's init is in.
      const ip = await this.verifiedAddress(run, request.uuid);
      if (ip === undefined) {
        run.detach();
        await this.cleanup(ref, cgroup);
        return undefined;
      }
      run.privateIp = ip;
    }
    run.watchLiveness();
    this.adoptedCgroups.set(request.uuid, cgroup.name);
    return run;
  }

  /** The run's address when its init sits in the netns of the instance's lease (waits briefly for init's pid). */
  private async verifiedAddress(run: MicroRun, uuid: string): Promise<string | undefined> {
    const deadline = Date.now() + this.limits.launcherReadyTimeoutMs;
    while (run.initPid === undefined && Date.now() < deadline && processStartTime(run.ref.pid) === run.ref.start) {
      await sleep(20);
      run.poll();
    }
    const pid = run.initPid;
    return pid === undefined ? undefined : this.options.network?.verifiedAddress(uuid, pid);
  }

  /** Removes what a run leaves: its cgroup (killing stragglers), netns + lease, and run directory. */
  async cleanup(ref: RunRef, cgroup: Cgroup): Promise<void> {
    // A frozen task cannot die: thaw before the cgroup's stragglers are killed, then drop the v1 freezer group.
    const freezer = this.existingFreezerFor(cgroup);
    freezer?.thaw();
    await cgroup.destroy().catch(() => undefined);
    if (freezer && cgroup.layout.version === 1) await freezer.remove().catch(() => undefined);
    if (ref.netns) await this.options.network?.detach(ref.uuid).catch(() => undefined);
    await rm(ref.runDir, { recursive: true, force: true }).catch(() => undefined);
    // Last: the range is free only once nothing of the run can hold its ids.
    this.hostIds.release(ref.idBase);
  }

  /** Reads a run's reference file (tests and diagnostics). */
  static async readRef(runDir: string): Promise<unknown> {
    return JSON.parse(await readFile(join(runDir, 'ref.json'), 'utf8'));
  }
}
