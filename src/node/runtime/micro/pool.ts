/**
 * The warm launcher pool of the `micro` runtime (why: on cgroup v1 moving a
 * process into a cgroup waits for an RCU grace period, ~10 ms, and spawning
 * from a large Node process costs a few ms more): `size` launchers are kept
 * pre-started with `--spec-stdin`, each already in a fresh cgroup `p-<id>` (no
 * limits yet) with its files in `<runsDir>/pool-<id>`. The driver's `start`
 * takes one, renames its directory to the run's, writes the instance's limits,
 * and sends the spec on its stdin; a background refill replaces it.
 *
 * Invariants:
 *  - Pre-started launchers never outlive the node process: their stdin is a
 *    pipe from the node, and EOF without a spec ends them; `init` removes what
 *    a previous process left in `pool-*`, `close` ends the current ones.
 *  - A refill never runs inside the start that triggered it (spawning costs ms,
 *    and that start is timed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { Cgroup, applyEventLine, warmLauncherArgs, type CgroupOptions, type LauncherEvents } from '../../../sandbox/index.js';
import { processStartTime } from './procfs.js';

/** A pre-started launcher: in its own cgroup (joined), waiting on stdin for what to run. */
export interface WarmLauncher {
  id: string;
  /** `<runsDir>/pool-<id>`: console, events, upper, work, root; renamed to the instance's run dir when taken. */
  dir: string;
  cgroup: Cgroup;
  child: ChildProcess;
  pid: number;
  start: string;
  /** Set when it ended while still in the pool. */
  dead: boolean;
}

export const POOL_DIR_PREFIX = 'pool-';

export interface LauncherPoolOptions {
  runsDir: string;
  launcherPath: string;
  /** Launchers kept pre-started; 0 = none. */
  size: number;
  /** How long a pre-started launcher may take to report `ready` before it is dropped. */
  readyTimeoutMs: number;
  graceMs: number;
  trace: boolean;
  /** The launcher caps the console file at this (see ukc-sandbox/console.c). */
  consoleMaxBytes: number;
  cgroupOptions: () => CgroupOptions;
}

export class LauncherPool {
  private readonly warm: WarmLauncher[] = [];
  private refilling: Promise<void> | undefined;
  private closed = false;
  /** Last failure to pre-start a launcher (diagnostics; starts then spawn on demand). */
  lastError: Error | undefined;

  constructor(private readonly options: LauncherPoolOptions) {
    if (!Number.isInteger(options.size) || options.size < 0) {
      throw new RangeError('launcherPoolSize must be a non-negative integer');
    }
  }

  /** Pre-started launchers ready right now (tests, diagnostics). */
  get ready(): number {
    return this.warm.filter((w) => !w.dead).length;
  }

  /** Removes pool leftovers of a previous node process, then starts filling the pool. */
  async init(): Promise<void> {
    await mkdir(this.options.runsDir, { recursive: true });
    for (const entry of await readdir(this.options.runsDir)) {
      if (!entry.startsWith(POOL_DIR_PREFIX)) continue;
      const id = entry.slice(POOL_DIR_PREFIX.length);
      // Their stdin closed with the old node, so they ended; destroy() kills any straggler.
      if (/^[0-9a-f]{16}$/.test(id)) await Cgroup.create(`p-${id}`, {}, this.options.cgroupOptions()).destroy().catch(() => undefined);
      await rm(join(this.options.runsDir, entry), { recursive: true, force: true });
    }
    this.refill();
  }

  /** Resolves once the pool is full (or a refill failed). */
  async filled(): Promise<void> {
    while (this.refilling) await this.refilling;
  }

  /** Stops refilling and ends every pre-started launcher (their cgroups and dirs go too). */
  async close(): Promise<void> {
    this.closed = true;
    await this.filled();
    for (const w of this.warm.splice(0)) await this.discard(w);
  }

  refill(): void {
    if (this.refilling || this.closed || this.warm.length >= this.options.size) return;
    this.refilling = (async () => {
      // Never inside the start that triggered it: spawning from Node costs ms, and that start is timed.
      await new Promise((r) => setImmediate(r));
      while (!this.closed && this.warm.length < this.options.size) {
        try {
          this.warm.push(await this.prestart());
        } catch (err) {
          this.lastError = err as Error;
          return;
        }
      }
    })().finally(() => {
      this.refilling = undefined;
    });
  }

  /** Spawns one launcher that joins a fresh cgroup and waits for its spec; resolves once it reported `ready`. */
  private async prestart(): Promise<WarmLauncher> {
    const id = randomBytes(8).toString('hex');
    const dir = join(this.options.runsDir, `${POOL_DIR_PREFIX}${id}`);
    for (const sub of ['upper', 'work', 'root']) await mkdir(join(dir, sub), { recursive: true });
    const cgroup = Cgroup.create(`p-${id}`, {}, this.options.cgroupOptions());
    const consoleFd = openSync(join(dir, 'console'), 'a', 0o600);
    const eventsFd = openSync(join(dir, 'events'), 'a', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(this.options.launcherPath, warmLauncherArgs({ cgroup, graceMs: this.options.graceMs, trace: this.options.trace, consoleMaxBytes: this.options.consoleMaxBytes }), {
        detached: true,
        stdio: ['pipe', consoleFd, consoleFd, eventsFd],
        env: {},
      });
    } finally {
      closeSync(consoleFd);
      closeSync(eventsFd);
    }
    const w: WarmLauncher = { id, dir, cgroup, child, pid: child.pid ?? 0, start: '0', dead: false };
    child.stdin?.on('error', () => undefined); // a launcher that died before its spec: the start sees it exit
    child.once('exit', () => {
      w.dead = true;
      const at = this.warm.indexOf(w);
      if (at >= 0) {
        this.warm.splice(at, 1);
        void this.discard(w);
        this.refill();
      }
    });
    child.unref();
    if (child.pid === undefined) {
      await this.discard(w);
      throw new Error('a warm launcher could not be started');
    }
    w.start = processStartTime(child.pid) ?? '0';
    // Wait (bounded) for `ready`: the cgroup join is what the pool exists to pay ahead of time.
    const deadline = Date.now() + this.options.readyTimeoutMs;
    const events = join(dir, 'events');
    for (;;) {
      if (w.dead) break;
      const state: LauncherEvents = { stubs: [] };
      for (const line of (await readFile(events, 'utf8').catch(() => '')).split('\n')) applyEventLine(state, line);
      if (state.ready) return w;
      if (state.error || Date.now() > deadline) break;
      await sleep(2);
    }
    await this.discard(w);
    throw new Error('a warm launcher did not get ready');
  }

  /** Ends a pre-started launcher that will not be used, and removes its cgroup and directory. */
  private async discard(w: WarmLauncher): Promise<void> {
    w.dead = true;
    // pid 0 is a launcher that never started (spawn failed): kill(0) would signal the node's
    // whole process group, the node and whoever started it included.
    if (w.pid > 0 && w.child.exitCode === null && w.child.signalCode === null) {
      try {
        process.kill(w.pid, 'SIGKILL'); // init has PDEATHSIG=SIGKILL
      } catch {
        // gone already
      }
    }
    w.child.stdin?.destroy();
    await w.cgroup.destroy().catch(() => undefined);
    await rm(w.dir, { recursive: true, force: true }).catch(() => undefined);
  }

  /** A live pre-started launcher, or undefined when the pool is empty; the caller refills. */
  take(): WarmLauncher | undefined {
    for (;;) {
      const w = this.warm.shift();
      if (!w) return undefined;
      if (!w.dead && w.child.exitCode === null && w.child.signalCode === null) return w;
    }
  }
}
