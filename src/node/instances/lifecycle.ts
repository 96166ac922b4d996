/**
 * The instance lifecycle: runs instances through a `RuntimeDriver`, records
 * every transition, applies restart policies and answers waits.
 *
 * RECOVERY DECISION (what happens when the controller starts with records left
 * by a previous process):
 *  - `running` / `draining` / `starting` / `stopping` with a `runtimeRef`: ask the
 *    driver to `adopt` the run. Adopted → the record continues (`starting` is
 *    promoted to `running`, since the process exists; `stopping` has its stop
 *    re-issued). A driver error counts as "gone".
 *  - gone, was `starting`: started again (the user's start never completed, so
 *    the intent stands); counts as a start, not a restart.
 *  - gone, was `stopping`: recorded `stopped` as a forced user stop (28).
 *  - gone, was `running` / `draining`: a platform failure (stop_reason 4); the
 *    restart policy decides (never → stopped, or deleted with delete-on-stop;
 *    always / on-failure → restarted with the usual backoff).
 *  - `stopped` with `restart.next_at`: the pending restart is re-armed for the
 *    remaining time (at once when it is overdue).
 *  - `standby` with a `runtimeRef` (stateful scale-to-zero: a frozen run; the
 *    freezer is kernel state, so the run outlives the controller still frozen):
 *    ADOPTED AND KEPT FROZEN. The driver adopts it, `freeze` is asked again
 *    (a no-op for a frozen group; it re-freezes one that was thawed behind our
 *    back), and the record stays `standby`: the next wake thaws the same
 *    process, its memory and sockets intact. When it cannot be adopted (gone)
 *    the record stays `standby` with `runtimeRef` cleared, so the wake starts it
 *    anew (stateless). When it is adopted but cannot be frozen, it is killed
 *    (thawed first) and recorded the same way — never left running unseen.
 * No record is dropped by recovery except through delete-on-stop.
 *
 * Recovery runs in two passes with the driver's `sweep` between them: first every
 * run that can be adopted is (its `private_ip` is then the one the runtime
 * verified, never the record's), then the driver removes whatever else previous
 * runs left (orphaned processes, cgroups, netns and leases, run directories),
 * and only then are lost runs restarted, so no address is leased again while an
 * orphan still holds it. An instance's `private_ip` belongs to its run: cleared
 * when a run starts and when it ends (kept by a frozen standby run).
 *
 * Other invariants:
 *  - Operations on one instance (start, stop, delete, automatic restart) run one
 *    at a time (`exclusive`); runtime events are applied synchronously as they
 *    arrive and are ignored unless they belong to the current run (`generation`).
 *  - An instance in a service group is drained before it stops: `draining`
 *    while the gateway (`deps.drainer`) finishes what is in flight, bounded by
 *    the stop's drain timeout; then `stopping`.
 *  - Scale-to-zero (`standby`): drained, stopped as a platform stop
 *    (stop_reason 7), recorded `standby` (never restarted by policy); a later
 *    `start` (the gateway's wake) launches it again.
 *  - Stateful scale-to-zero (`scale_to_zero.stateful`, when the run's handle can
 *    `freeze`): drained, then frozen in place (cgroup freezer: no CPU, memory,
 *    sockets and files kept) and recorded `standby` with its `runtimeRef`; the
 *    wake thaws it (no process start). The thaw's `starting` is announced to
 *    watchers but not stored — the record goes `standby` → `running` in one
 *    write; a crash in between leaves `standby`, which is what it still is
 *    until the thaw is confirmed. A frozen run that exits ends `standby`
 *    (stateless); a user stop thaws it, then stops it like a running one. When
 *    freezing fails the instance is stopped as in the stateless case.
 *  - Watchers (`watch`) see every stored state change and every deletion, in order.
 *  - A stop asked by the user never triggers a restart. Restart backoff: the
 *    first automatic restart is immediate, then 5 s, 10 s, 20 s … capped at
 *    5 min; `restart.attempt` returns to 0 once a run stayed up 10 s.
 */
import { constants as osConstants } from 'node:os';
import { Errno, NodeError } from '../errors.js';
import { stderrLogger, toApiError, type ApiLogger } from '../../api/index.js';
import type { Clock, TimerHandle } from '../clock.js';
import { accountPrincipal, type AccountPrincipal } from '../../auth/index.js';
import { KeyedMutex } from '../../store/index.js';
import type { ImageResolver } from '../images/resolver.js';
import type { RuntimeDriver, RuntimeEvent, RuntimeHandle, RuntimeHooks, RuntimeStats, SweepReport } from '../runtime/driver.js';
import type { InstanceStore } from './store.js';
import type { LogRing } from './logs.js';
import { canTransition, StopReasons, type InstanceRecord, type InstanceState } from './model.js';

export interface LifecycleLimits {
  /** Default time an app gets to exit after a stop request before it is killed. */
  stopGraceMs: number;
  /** How long to wait for the driver's `exited` after the grace period or a kill. */
  exitWaitMs: number;
  restartBaseDelayMs: number;
  restartMaxDelayMs: number;
  /** A run that stays up this long resets the restart backoff. */
  healthyResetMs: number;
  /** Upper bound of any wait, also of `timeout_ms: -1`. */
  maxWaitMs: number;
  /** How long a stop waits for a service group member's requests to finish when the caller gives no drain timeout. */
  drainTimeoutMs: number;
}

export const DEFAULT_LIFECYCLE_LIMITS: LifecycleLimits = {
  stopGraceMs: 10_000,
  exitWaitMs: 10_000,
  restartBaseDelayMs: 5_000,
  restartMaxDelayMs: 300_000,
  healthyResetMs: 10_000,
  maxWaitMs: 24 * 3600 * 1000,
  drainTimeoutMs: 10_000,
};

/** Delay before automatic restart number `attempt + 1`: 0, base, 2·base, 4·base … ≤ max. */
export function restartDelayMs(attempt: number, limits: Pick<LifecycleLimits, 'restartBaseDelayMs' | 'restartMaxDelayMs'>): number {
  if (attempt <= 0) return 0;
  const exp = Math.min(attempt - 1, 30);
  return Math.min(limits.restartBaseDelayMs * 2 ** exp, limits.restartMaxDelayMs);
}

type Outcome =
  | { kind: 'exited'; code: number | null; signal: NodeJS.Signals | null; oom: boolean }
  | { kind: 'start-failed' }
  /** The runtime vanished (not adoptable, or never confirmed an exit). */
  | { kind: 'lost' };

/** A run that can be frozen in place (stateful scale-to-zero); drivers offer it optionally. */
export interface FreezableHandle extends RuntimeHandle {
  /** Stops the run from being scheduled, everything kept; resolves once it is frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
}

export function isFreezable(handle: RuntimeHandle | undefined): handle is FreezableHandle {
  return handle !== undefined && typeof (handle as Partial<FreezableHandle>).freeze === 'function' && typeof (handle as Partial<FreezableHandle>).thaw === 'function';
}

interface Run {
  generation: number;
  handle?: RuntimeHandle;
  /** Frozen in standby (stateful scale-to-zero). */
  frozen: boolean;
  stopRequested: boolean;
  /** The platform is stopping it for scale-to-zero: it ends in `standby`. */
  toStandby: boolean;
  ended: boolean;
  endedPromise: Promise<void>;
  markEnded(): void;
  healthyTimer?: TimerHandle;
}

interface Waiter {
  state: InstanceState;
  resolve(record: InstanceRecord | undefined): void;
}

export interface LifecycleDeps {
  store: InstanceStore;
  driver: RuntimeDriver;
  resolver: ImageResolver;
  clock: Clock;
  logs: LogRing;
  limits: LifecycleLimits;
  /** Finishes traffic in flight to an instance before it stops (the gateway). */
  drainer?: (uuid: string, timeoutMs: number) => Promise<void>;
  /** Where a start that fails for a reason of ours (any 5xx: a bug, a full disk) is logged with its cause. */
  logger?: ApiLogger;
}

/** What watchers see: the record after a change, or the uuid of a deleted instance. */
export type LifecycleChange = { record: InstanceRecord } | { deleted: string };

export interface RecoveryReport {
  adopted: string[];
  started: string[];
  stopped: string[];
  deleted: string[];
  rearmed: string[];
  /** What the runtime's sweep removed of dead runs (absent when the driver has no sweep). */
  swept?: SweepReport;
}

const LIVE: ReadonlySet<InstanceState> = new Set(['starting', 'running', 'draining', 'stopping']);

export class InstanceLifecycle {
  private readonly runs = new Map<string, Run>();
  private readonly restartTimers = new Map<string, TimerHandle>();
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly locks = new KeyedMutex();
  private readonly watchers = new Set<(change: LifecycleChange) => void>();
  private generation = 0;
  private closed = false;

  constructor(private readonly deps: LifecycleDeps) {}

  // ---- public operations -------------------------------------------------

  /** Inserts the records (one transaction) and starts them when asked. */
  async create(records: InstanceRecord[], principal: AccountPrincipal, autostart: boolean): Promise<void> {
    this.deps.store.insertAll(records);
    await this.startAll(records, principal, autostart);
  }

  /** After an insert: tells watchers about the new records and starts them when asked. */
  async startAll(records: InstanceRecord[], principal: AccountPrincipal, autostart: boolean): Promise<void> {
    for (const r of records) this.emit({ record: r });
    if (autostart) await Promise.all(records.map((r) => this.start(r.uuid, principal)));
  }

  /** Starts a stopped instance; a no-op when it is already starting or running. */
  start(uuid: string, principal: AccountPrincipal): Promise<InstanceRecord> {
    return this.exclusive(uuid, async () => {
      const r = this.mustGet(uuid);
      if (r.state === 'starting' || r.state === 'running') return r;
      if (r.state !== 'stopped' && r.state !== 'standby')
        throw new NodeError(Errno.EBUSY, `instance is ${r.state}; try again when it has stopped`);
      this.cancelRestart(uuid);
      const run = this.runs.get(uuid);
      if (r.state === 'standby' && run?.frozen === true && (await this.thawLocked(r, run))) return this.mustGet(uuid);
      await this.launch(this.mustGet(uuid), principal, false);
      return this.mustGet(uuid);
    });
  }

  /** Calls `fn` after every stored state change and deletion; returns the unsubscribe function. */
  watch(fn: (change: LifecycleChange) => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }

  /**
   * Scale-to-zero: drains and stops a running instance as a platform stop and
   * records it `standby`. A no-op unless it is running.
   */
  standby(uuid: string): Promise<InstanceRecord | undefined> {
    return this.exclusive(uuid, async () => {
      const r = this.mustGet(uuid);
      if (r.state !== 'running') return r;
      const run = this.runs.get(uuid);
      if (r.scaleToZero?.stateful === true && run !== undefined && isFreezable(run.handle) && (await this.freezeLocked(uuid, run, run.handle)))
        return this.deps.store.get(uuid);
      await this.stopLocked(uuid, {}, true);
      return this.deps.store.get(uuid);
    });
  }

  /** Stops a live instance (killing it after the grace period); a no-op when stopped. */
  stop(uuid: string, opts: { force?: boolean; graceMs?: number; drainMs?: number } = {}): Promise<InstanceRecord | undefined> {
    return this.exclusive(uuid, async () => {
      await this.stopLocked(uuid, opts);
      return this.deps.store.get(uuid);
    });
  }

  /** Stops (if needed) and deletes the instance with its logs. */
  remove(uuid: string, opts: { graceMs?: number } = {}): Promise<void> {
    return this.exclusive(uuid, async () => {
      if (!this.deps.store.get(uuid)) return;
      await this.stopLocked(uuid, opts);
      this.erase(uuid);
    });
  }

  /** Applies a change to a stopped-or-not record (validated by the caller). */
  update(uuid: string, change: (r: InstanceRecord) => void): Promise<InstanceRecord> {
    return this.exclusive(uuid, async () => {
      const r = this.mustGet(uuid);
      change(r);
      this.deps.store.put(r);
      return r;
    });
  }

  /**
   * Resolves with the record once it is in `state` (undefined for `deleted`);
   * ETIMEDOUT after `timeoutMs` (-1 = until `maxWaitMs`), ECANCELED on abort.
   */
  waitFor(uuid: string, state: InstanceState, timeoutMs: number, signal?: AbortSignal): Promise<InstanceRecord | undefined> {
    const current = this.deps.store.get(uuid);
    if (!current) {
      return state === 'deleted' ? Promise.resolve(undefined) : Promise.reject(new NodeError(Errno.ENOENT, 'instance not found'));
    }
    if (current.state === state) return Promise.resolve(current);
    if (this.closed) return Promise.reject(new NodeError(Errno.ECANCELED, 'node is shutting down'));
    const limit = timeoutMs < 0 ? this.deps.limits.maxWaitMs : Math.min(timeoutMs, this.deps.limits.maxWaitMs);
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(uuid);
      if (!set) this.waiters.set(uuid, (set = new Set()));
      const done = (): void => {
        timer.cancel();
        signal?.removeEventListener('abort', onAbort);
        set.delete(waiter);
        if (set.size === 0 && this.waiters.get(uuid) === set) this.waiters.delete(uuid);
      };
      const waiter: Waiter = {
        state,
        resolve: (rec) => {
          done();
          if (this.closed && rec === undefined) reject(new NodeError(Errno.ECANCELED, 'node is shutting down'));
          else if (rec === undefined && state !== 'deleted') reject(new NodeError(Errno.ENOENT, 'instance was deleted'));
          else resolve(rec);
        },
      };
      const onAbort = (): void => {
        done();
        reject(new NodeError(Errno.ECANCELED, 'wait cancelled'));
      };
      const timer = this.deps.clock.setTimer(limit, () => {
        done();
        reject(new NodeError(Errno.ETIMEDOUT, `instance did not reach ${state} within ${limit} ms`));
      });
      set.add(waiter);
      if (signal?.aborted) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  async stats(uuid: string): Promise<RuntimeStats | undefined> {
    const handle = this.runs.get(uuid)?.handle;
    if (!handle) return undefined;
    try {
      return await handle.stats();
    } catch {
      return undefined;
    }
  }

  /** Re-adopts or restarts what a previous controller left behind; see the top of this file. */
  async recover(principalFor: (owner: string) => AccountPrincipal): Promise<RecoveryReport> {
    const report: RecoveryReport = { adopted: [], started: [], stopped: [], deleted: [], rearmed: [] };
    // Pass 1: adopt every run the runtime still has, taking its address from the runtime.
    const unadopted: string[] = [];
    for (const record of this.deps.store.list()) {
      await this.exclusive(record.uuid, async () => {
        const r = this.mustGet(record.uuid);
        const principal = principalFor(r.owner);
        if (r.state === 'stopped') {
          if (r.privateIp !== null) this.deps.store.put({ ...r, privateIp: null });
          if (r.restart.next_at !== null) {
            this.armRestart(r.uuid, Math.max(0, r.restart.next_at - this.deps.clock.now()), principal);
            report.rearmed.push(r.uuid);
          }
          return;
        }
        if (r.state === 'standby') {
          if (r.runtimeRef !== null && (await this.recoverFrozen(r, principal))) report.adopted.push(r.uuid);
          else if (this.mustGet(r.uuid).privateIp !== null) this.deps.store.put({ ...this.mustGet(r.uuid), privateIp: null });
          return;
        }
        if (!LIVE.has(r.state)) return;
        const handle = r.runtimeRef === null ? undefined : await this.tryAdopt(r);
        if (handle) {
          const run = this.newRun();
          run.handle = handle.handle;
          handle.bind(run.generation);
          this.runs.set(r.uuid, run);
          if (handle.handle.privateIp !== undefined && handle.handle.privateIp !== r.privateIp) {
            r.privateIp = handle.handle.privateIp;
            this.deps.store.put(r);
          }
          if (r.state === 'starting') this.transition(r, 'running', { startedAt: r.startedAt ?? this.deps.clock.now() });
          if (r.state === 'running') this.armHealthy(r.uuid, run);
          report.adopted.push(r.uuid);
          if (r.state === 'stopping') await this.stopLocked(r.uuid, {});
          return;
        }
        unadopted.push(r.uuid);
      });
    }
    // What no adopted run owns goes before anything starts again: an orphaned run's address
    // must be off the bridge before the address can be leased to someone else.
    if (this.deps.driver.sweep) {
      try {
        report.swept = await this.deps.driver.sweep(new Set(report.adopted));
      } catch (err) {
        (this.deps.logger ?? stderrLogger).error({ err }, 'recovery sweep failed');
      }
    }
    // Pass 2: what was live but is gone restarts, stops or is deleted per its policy.
    for (const uuid of unadopted) {
      await this.exclusive(uuid, async () => {
        const r = this.deps.store.get(uuid);
        if (!r || !LIVE.has(r.state)) return;
        const principal = principalFor(r.owner);
        if (r.state === 'starting') {
          this.transition(r, 'stopped', { runtimeRef: null, privateIp: null });
          await this.launch(this.mustGet(r.uuid), principal, false);
          report.started.push(r.uuid);
          return;
        }
        const userStop = r.state === 'stopping';
        const run = this.newRun();
        run.stopRequested = userStop;
        this.runs.set(r.uuid, run);
        this.settle(r.uuid, run, { kind: 'lost' }, principal);
        const after = this.deps.store.get(r.uuid);
        if (!after) report.deleted.push(r.uuid);
        else if (after.state === 'stopped' && after.restart.next_at === null) report.stopped.push(r.uuid);
        else report.started.push(r.uuid);
      });
    }
    return report;
  }

  /**
   * Stops timers and detaches from running instances without stopping them
   * (they are re-adopted on the next start). Pending waits fail with ECANCELED.
   */
  async close(): Promise<void> {
    this.closed = true;
    await this.locks.settled();
    for (const t of this.restartTimers.values()) t.cancel();
    this.restartTimers.clear();
    for (const run of this.runs.values()) {
      run.healthyTimer?.cancel();
      run.handle?.detach();
    }
    this.runs.clear();
    for (const set of [...this.waiters.values()]) for (const w of [...set]) w.resolve(undefined);
    this.waiters.clear();
  }

  // ---- internals ---------------------------------------------------------

  private mustGet(uuid: string): InstanceRecord {
    const r = this.deps.store.get(uuid);
    if (!r) throw new NodeError(Errno.ENOENT, 'instance not found');
    return r;
  }

  private async exclusive<T>(uuid: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new NodeError(Errno.ECANCELED, 'node is shutting down');
    return this.locks.run(uuid, fn);
  }

  /** Writes the record with a new state (checked against the state machine) and wakes waiters. */
  private transition(r: InstanceRecord, to: InstanceState, fields: Partial<InstanceRecord> = {}): void {
    if (r.state !== to && !canTransition(r.state, to)) throw new Error(`illegal transition ${r.state} -> ${to}`);
    Object.assign(r, fields, { state: to });
    this.deps.store.put(r);
    this.notify(r);
  }

  private notify(r: InstanceRecord): void {
    this.emit({ record: r });
    const set = this.waiters.get(r.uuid);
    if (!set) return;
    for (const w of [...set]) if (w.state === r.state) w.resolve(r);
  }

  private emit(change: LifecycleChange): void {
    for (const w of [...this.watchers]) {
      try {
        w(change);
      } catch {
        // A watcher's bug must not break the state machine.
      }
    }
  }

  private newRun(): Run {
    let markEnded!: () => void;
    const endedPromise = new Promise<void>((r) => (markEnded = r));
    const run: Run = {
      generation: ++this.generation,
      frozen: false,
      stopRequested: false,
      toStandby: false,
      ended: false,
      endedPromise,
      markEnded: () => {
        run.ended = true;
        markEnded();
      },
    };
    return run;
  }

  private hooks(uuid: string, generation: () => number, principal: () => AccountPrincipal): RuntimeHooks {
    return {
      onEvent: (event) => this.onEvent(uuid, generation(), event, principal()),
      onOutput: (chunk) => {
        const run = this.runs.get(uuid);
        if (run && run.generation === generation()) this.appendLog(uuid, chunk);
      },
    };
  }

  private appendLog(uuid: string, chunk: Uint8Array): void {
    try {
      this.deps.logs.append(uuid, chunk);
    } catch {
      // A full disk must not take the controller down; the app keeps running.
    }
  }

  private async launch(r: InstanceRecord, principal: AccountPrincipal, automatic: boolean): Promise<void> {
    const run = this.newRun();
    this.runs.set(r.uuid, run);
    this.transition(r, 'starting', {
      startCount: r.startCount + 1,
      restartCount: r.restartCount + (automatic ? 1 : 0),
      restart: { attempt: automatic ? r.restart.attempt : 0, next_at: null },
      startedAt: null,
      stoppedAt: null,
      bootTimeUs: null,
      netTimeUs: null,
      stopReason: null,
      exitCode: null,
      stopCode: null,
      runtimeRef: null,
      // The address belongs to a run: the new one reports its own once started.
      privateIp: null,
    });
    let handle: RuntimeHandle;
    try {
      const image = await this.deps.resolver.resolve({ url: r.image, pullPolicy: r.imagePullPolicy }, principal);
      handle = await this.deps.driver.start(
        {
          uuid: r.uuid,
          name: r.name,
          owner: r.owner,
          image: r.image,
          rootfs: image.rootfs,
          args: [...(image.config.Entrypoint ?? []), ...r.args],
          env: r.env,
          memoryMb: r.memoryMb,
          vcpus: r.vcpus,
          privateFqdn: r.privateFqdn,
        },
        this.hooks(r.uuid, () => run.generation, () => principal),
      );
    } catch (err) {
      const known = toApiError(err);
      const why = known.message;
      if (known.httpStatus >= 500) (this.deps.logger ?? stderrLogger).error({ err, instance: r.uuid, errno: known.errno }, 'instance start failed');
      this.appendLog(r.uuid, Buffer.from(`[ukc] start failed: ${why}\n`));
      this.settle(r.uuid, run, { kind: 'start-failed' }, principal);
      return;
    }
    if (run.ended || this.runs.get(r.uuid) !== run) return;
    run.handle = handle;
    const now = this.mustGet(r.uuid);
    now.runtimeRef = handle.runtimeRef;
    this.deps.store.put(now);
  }

  private onEvent(uuid: string, generation: number, event: RuntimeEvent, principal: AccountPrincipal): void {
    const run = this.runs.get(uuid);
    if (!run || run.generation !== generation || run.ended) return;
    const r = this.deps.store.get(uuid);
    if (!r) return;
    switch (event.type) {
      case 'started':
        r.bootTimeUs = event.bootTimeUs;
        if (event.privateIp !== undefined) r.privateIp = event.privateIp;
        if (r.state === 'starting') {
          this.transition(r, 'running', { startedAt: this.deps.clock.now() });
          this.armHealthy(uuid, run);
        } else this.deps.store.put(r);
        return;
      case 'listening':
        r.netTimeUs = event.netTimeUs;
        this.deps.store.put(r);
        // Watchers see it too (the node's metrics observe net_time_us from here).
        this.notify(r);
        return;
      case 'exited':
        this.settle(uuid, run, { kind: 'exited', code: event.code, signal: event.signal, oom: event.oom }, principal);
        return;
    }
  }

  private armHealthy(uuid: string, run: Run): void {
    run.healthyTimer?.cancel();
    run.healthyTimer = this.deps.clock.setTimer(this.deps.limits.healthyResetMs, () => {
      if (this.runs.get(uuid) !== run || run.ended) return;
      const r = this.deps.store.get(uuid);
      if (r && r.state === 'running' && r.restart.attempt !== 0) {
        r.restart = { attempt: 0, next_at: null };
        this.deps.store.put(r);
      }
    });
  }

  /** A run ended: record why, then restart, delete or leave it stopped. Synchronous. */
  private settle(uuid: string, run: Run, outcome: Outcome, principal: AccountPrincipal): void {
    if (run.ended || this.runs.get(uuid) !== run) return;
    this.runs.delete(uuid);
    run.healthyTimer?.cancel();
    run.markEnded();
    const r = this.deps.store.get(uuid);
    if (!r) return;
    const now = this.deps.clock.now();
    let stopReason: number;
    let exitCode: number | null = null;
    let stopCode: number | null = null;
    let failure = true;
    if (outcome.kind === 'start-failed') {
      stopReason = StopReasons.platformFailure;
    } else if (outcome.kind === 'lost') {
      stopReason = run.stopRequested ? StopReasons.forcedUserStop : StopReasons.platformFailure;
    } else if (run.stopRequested) {
      if (outcome.signal === 'SIGKILL' && !outcome.oom) stopReason = StopReasons.forcedUserStop;
      else {
        stopReason = StopReasons.cleanUserStop;
        exitCode = outcome.code ?? 128 + signalNumber(outcome.signal);
      }
    } else if (outcome.oom) {
      stopReason = StopReasons.limitKill;
      stopCode = signalNumber(outcome.signal ?? 'SIGKILL');
    } else if (outcome.code !== null) {
      stopReason = StopReasons.appExited;
      exitCode = outcome.code;
      failure = outcome.code !== 0;
    } else {
      stopReason = StopReasons.crash;
      stopCode = signalNumber(outcome.signal);
    }
    const fields: Partial<InstanceRecord> = {
      stoppedAt: now,
      stopReason,
      exitCode,
      stopCode,
      runtimeRef: null,
      // The run's address went with it (its lease is released): never report one another may hold.
      privateIp: null,
    };
    if (run.toStandby || run.frozen) {
      fields.stopReason = StopReasons.platformStop;
      this.transition(r, 'standby', fields);
      return;
    }
    const restart =
      !run.stopRequested && (r.restartPolicy === 'always' || (r.restartPolicy === 'on-failure' && failure));
    if (restart) {
      // A run that stayed up long enough starts the backoff over.
      const healthy = r.startedAt !== null && now - r.startedAt >= this.deps.limits.healthyResetMs;
      const attempt = healthy ? 0 : r.restart.attempt;
      const delay = restartDelayMs(attempt, this.deps.limits);
      fields.restart = { attempt: attempt + 1, next_at: now + delay };
      this.transition(r, 'stopped', fields);
      if (!this.closed) this.armRestart(uuid, delay, principal);
      return;
    }
    this.transition(r, 'stopped', fields);
    if (r.features.includes('delete-on-stop') && !this.closed) this.erase(uuid);
  }

  private armRestart(uuid: string, delayMs: number, principal: AccountPrincipal): void {
    this.cancelRestart(uuid);
    const timer = this.deps.clock.setTimer(delayMs, () => {
      if (this.restartTimers.get(uuid) !== timer) return;
      this.restartTimers.delete(uuid);
      this.exclusive(uuid, async () => {
        const r = this.deps.store.get(uuid);
        if (!r || r.state !== 'stopped' || r.restart.next_at === null) return;
        await this.launch(r, principal, true);
      }).catch(() => {
        // Closed or deleted meanwhile: nothing to restart.
      });
    });
    this.restartTimers.set(uuid, timer);
  }

  private cancelRestart(uuid: string): void {
    this.restartTimers.get(uuid)?.cancel();
    this.restartTimers.delete(uuid);
  }

  private sleep(ms: number, until: Promise<void>): Promise<boolean> {
    return new Promise((resolve) => {
      const t = this.deps.clock.setTimer(ms, () => resolve(false));
      void until.then(() => {
        t.cancel();
        resolve(true);
      });
    });
  }

  private async stopLocked(uuid: string, opts: { force?: boolean; graceMs?: number; drainMs?: number }, toStandby = false): Promise<void> {
    let r = this.mustGet(uuid);
    if (r.state === 'standby') {
      // A user stop makes a standby instance stopped: the gateway no longer wakes it.
      const frozen = this.runs.get(uuid);
      if (frozen?.frozen === true) {
        frozen.stopRequested = true;
        frozen.frozen = false;
        if (isFreezable(frozen.handle)) await frozen.handle.thaw().catch(() => undefined);
        await this.endRun(uuid, frozen, opts, accountPrincipal(r.owner));
        r = this.mustGet(uuid);
        if (r.state !== 'standby') return;
      }
      this.transition(r, 'stopped', { runtimeRef: null });
      return;
    }
    if (r.state === 'stopped') {
      if (r.restart.next_at !== null) {
        this.cancelRestart(uuid);
        r.restart = { attempt: r.restart.attempt, next_at: null };
        this.deps.store.put(r);
      }
      return;
    }
    const run = this.runs.get(uuid);
    const principal = accountPrincipal(r.owner);
    if (!run) {
      // Live on record but nothing to talk to: settle it as a forced user stop.
      const orphan = this.newRun();
      orphan.stopRequested = true;
      this.runs.set(uuid, orphan);
      this.settle(uuid, orphan, { kind: 'lost' }, principal);
      return;
    }
    if (r.state === 'running' && r.serviceGroup !== null && this.deps.drainer && !opts.force) {
      this.transition(r, 'draining');
      try {
        await this.deps.drainer(uuid, opts.drainMs ?? this.deps.limits.drainTimeoutMs);
      } catch {
        // Draining is best effort; the stop goes on.
      }
      if (run.ended) return;
      r = this.mustGet(uuid);
    }
    run.stopRequested = true;
    run.toStandby = toStandby;
    if (r.state !== 'stopping') this.transition(r, 'stopping');
    await this.endRun(uuid, run, opts, principal);
  }

  /** Asks the run to stop (kill after the grace period) and waits for its end; settles it as lost when none comes. */
  private async endRun(uuid: string, run: Run, opts: { force?: boolean; graceMs?: number }, principal: AccountPrincipal): Promise<void> {
    const grace = opts.force ? 0 : (opts.graceMs ?? this.deps.limits.stopGraceMs);
    const handle = run.handle;
    if (handle) {
      try {
        if (opts.force) await handle.kill();
        else await handle.stop(grace);
      } catch {
        // The exit (or its absence) below decides what is recorded.
      }
      if (!(await this.sleep(grace + this.deps.limits.exitWaitMs, run.endedPromise))) {
        await handle.kill().catch(() => undefined);
        await this.sleep(this.deps.limits.exitWaitMs, run.endedPromise);
      }
    }
    if (!run.ended) this.settle(uuid, run, { kind: 'lost' }, principal);
  }

  /**
   * Stateful standby: drains, freezes the run and records `standby` (runtimeRef kept).
   * False when the freeze failed (the caller stops the instance instead).
   */
  private async freezeLocked(uuid: string, run: Run, handle: FreezableHandle): Promise<boolean> {
    if (this.deps.drainer) {
      try {
        await this.deps.drainer(uuid, this.deps.limits.drainTimeoutMs);
      } catch {
        // Draining is best effort.
      }
    }
    if (run.ended) return true; // it exited meanwhile; settle recorded it
    try {
      await handle.freeze();
    } catch (err) {
      this.appendLog(uuid, Buffer.from(`[ukc] freeze failed, stopping instead: ${err instanceof Error ? err.message : String(err)}\n`));
      return false;
    }
    if (run.ended) return true;
    run.frozen = true;
    run.healthyTimer?.cancel();
    const r = this.mustGet(uuid);
    this.transition(r, 'standby', { stoppedAt: this.deps.clock.now(), stopReason: StopReasons.platformStop, exitCode: null, stopCode: null });
    return true;
  }

  /** Wakes a frozen standby run in place. False when thawing failed (the run is then ended; the caller launches anew). */
  private async thawLocked(r: InstanceRecord, run: Run): Promise<boolean> {
    try {
      if (!isFreezable(run.handle)) throw new Error('run cannot thaw');
      await run.handle.thaw();
    } catch (err) {
      this.appendLog(r.uuid, Buffer.from(`[ukc] thaw failed, starting anew: ${err instanceof Error ? err.message : String(err)}\n`));
      run.frozen = false;
      run.stopRequested = true;
      run.toStandby = true;
      await this.endRun(r.uuid, run, { force: true }, accountPrincipal(r.owner));
      return false;
    }
    run.frozen = false;
    if (run.ended) return false;
    this.announce(r, 'starting');
    this.transition(r, 'running', { startCount: r.startCount + 1, startedAt: this.deps.clock.now(), stoppedAt: null, stopReason: null });
    this.armHealthy(r.uuid, run);
    return true;
  }

  /** A state change that watchers and waiters see but that is not stored (see the top of this file). */
  private announce(r: InstanceRecord, to: InstanceState): void {
    if (r.state !== to && !canTransition(r.state, to)) throw new Error(`illegal transition ${r.state} -> ${to}`);
    r.state = to;
    this.notify(r);
  }

  private erase(uuid: string): void {
    this.cancelRestart(uuid);
    this.deps.store.delete(uuid);
    try {
      this.deps.logs.remove(uuid);
    } catch {
      // Leftover log files are harmless; the record is gone.
    }
    this.emit({ deleted: uuid });
    const set = this.waiters.get(uuid);
    if (set) for (const w of [...set]) w.resolve(undefined);
  }

  /** A standby record holding a frozen run (see the top of this file): true when it was adopted and kept frozen. */
  private async recoverFrozen(r: InstanceRecord, principal: AccountPrincipal): Promise<boolean> {
    const adopted = await this.tryAdopt(r);
    if (!adopted) {
      r.runtimeRef = null;
      this.deps.store.put(r);
      return false;
    }
    const run = this.newRun();
    run.handle = adopted.handle;
    adopted.bind(run.generation);
    this.runs.set(r.uuid, run);
    if (isFreezable(adopted.handle)) {
      try {
        await adopted.handle.freeze();
        if (!run.ended) {
          run.frozen = true;
          return true;
        }
        return false;
      } catch (err) {
        this.appendLog(r.uuid, Buffer.from(`[ukc] a frozen standby run could not be kept frozen, stopping it: ${err instanceof Error ? err.message : String(err)}\n`));
      }
    }
    run.stopRequested = true;
    run.toStandby = true;
    await this.endRun(r.uuid, run, { force: true }, principal);
    return false;
  }

  private async tryAdopt(r: InstanceRecord): Promise<{ handle: RuntimeHandle; bind(generation: number): void } | undefined> {
    let generation = -1;
    const principal = accountPrincipal(r.owner);
    try {
      const handle = await this.deps.driver.adopt(
        { uuid: r.uuid, name: r.name, runtimeRef: r.runtimeRef ?? '' },
        this.hooks(r.uuid, () => generation, () => principal),
      );
      return handle ? { handle, bind: (g) => (generation = g) } : undefined;
    } catch {
      return undefined;
    }
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  if (signal === null) return 0;
  return (osConstants.signals as Record<string, number>)[signal] ?? 0;
}
