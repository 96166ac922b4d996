/**
 * Business logic behind `/v1/instances`: lookups that honour tenant isolation,
 * create planning, and per-item operations. Routes validate and shape; this
 * module decides. Every lookup goes through `findVisible`, which answers an
 * object the principal may not read exactly like a missing one (ENOENT).
 *
 * Quotas (see ../users.ts): create and start are admitted by the `QuotaGuard`
 * against the caller's own account (EDQUOT). Root acting on another account's
 * instance is not charged to either account.
 */
import { Errno, NodeError } from '../errors.js';
import type { Selector } from '../../api/index.js';
import type { AccountPrincipal, PlatformAction, Policy } from '../../auth/index.js';
import type { Clock } from '../clock.js';
import type { ImageResolver } from '../images/resolver.js';
import { imageNotFoundMessage, type ImagePullCheck } from '../images/pull-access.js';
import type { InstanceStore } from './store.js';
import type { LogRing } from './logs.js';
import type { InstanceLifecycle } from './lifecycle.js';
import { checkCreateRules, createWaitMs, imageRequestOf, planInstances, type Capabilities, type CreateRequest, type InstanceLimits } from './create.js';
import type { QuotaGuard } from '../users.js';
import { presentInstance, StopReasons, type InstanceRecord, type InstanceState, type RestartPolicy, type Feature, type ServiceGroupRequest } from './model.js';

/** How instances join service groups (implemented by src/node/services, wired in index.ts). */
export interface ServiceGroupAttachment {
  /**
   * The group new instances join: an existing one (`{uuid}`/`{name}`, visible to
   * `principal`) or a new ephemeral one described inline. `rollback` undoes a
   * group made here when the create fails afterwards.
   */
  attach(principal: AccountPrincipal, request: ServiceGroupRequest): Promise<{ uuid: string; rollback(): Promise<void> }>;
  /** The `service_group` field of an instance answer. */
  describe(uuid: string): Record<string, unknown> | undefined;
}

// One selector grammar for the whole v1 API (src/api/query.ts).
export { selectorFromPath, type Selector } from '../../api/index.js';

export interface InstanceServiceDeps {
  store: InstanceStore;
  lifecycle: InstanceLifecycle;
  resolver: ImageResolver;
  policy: Policy;
  clock: Clock;
  logs: LogRing;
  limits: InstanceLimits;
  capabilities: Capabilities;
  groups?: ServiceGroupAttachment;
  /** Per-account quotas; absent: none (single tenant). */
  quotas?: QuotaGuard;
  /** May the caller run this image (see ../images/pull-access.ts); absent: every image (single tenant). */
  mayPullImage?: ImagePullCheck;
  /** Requests and connections the gateway has open to an instance now (absent: no gateway, or not a member). */
  traffic?: (uuid: string) => { inflight: number; connections: number } | undefined;
}

export interface PatchRequest {
  memory_mb?: number;
  vcpus?: number;
  args?: string[];
  env?: Record<string, string>;
  tags?: string[];
  restart_policy?: RestartPolicy;
  features?: Feature[];
}

export interface CreateOutcome {
  records: InstanceRecord[];
  /** Per instance: the wait failure when `timeout_s` ran out before it ran. */
  waitErrors: Map<string, NodeError>;
}

export class InstanceService {
  constructor(private readonly deps: InstanceServiceDeps) {}

  /** The record if `principal` may see it and do `action` on it; ENOENT / EACCES otherwise. */
  findVisible(principal: AccountPrincipal, sel: Selector, action: PlatformAction): InstanceRecord {
    const r =
      sel.uuid !== undefined ? this.deps.store.get(sel.uuid) : this.deps.store.getByName(principal.name, sel.name ?? '');
    const ref = r ? { kind: 'instance' as const, owner: r.owner } : undefined;
    if (!r || !ref || !this.deps.policy.visible(principal, ref)) throw new NodeError(Errno.ENOENT, 'instance not found');
    if (action !== 'read' && !this.deps.policy.authorize(principal, action, ref).allow)
      throw new NodeError(Errno.EACCES, `not allowed to ${action} this instance`);
    return r;
  }

  listVisible(principal: AccountPrincipal): InstanceRecord[] {
    return this.deps.store
      .list()
      .filter((r) => this.deps.policy.visible(principal, { kind: 'instance', owner: r.owner }));
  }

  present(principal: AccountPrincipal, r: InstanceRecord, details: boolean): Record<string, unknown> {
    if (!details) return { uuid: r.uuid, name: r.name };
    const out = presentInstance(r, this.deps.clock.now(), principal.role === 'root');
    const groupUuid = r.serviceGroup !== null && 'uuid' in r.serviceGroup ? r.serviceGroup.uuid : undefined;
    const group = groupUuid !== undefined ? this.deps.groups?.describe(groupUuid) : undefined;
    if (group) out.service_group = group;
    return out;
  }

  async create(principal: AccountPrincipal, req: CreateRequest): Promise<CreateOutcome> {
    checkCreateRules(req, this.deps.capabilities);
    const count = (req.replicas ?? 0) + 1;
    if (this.deps.store.list().length + count > this.deps.limits.maxInstances)
      throw new NodeError(Errno.ENOSPC, `this node holds at most ${this.deps.limits.maxInstances} instances`);
    // Early, before an image is pulled; checked again with the planned records below.
    this.deps.quotas?.check(principal, { instances: count });
    const imageRequest = imageRequestOf(req);
    // Another tenant's image (even one already cached on this node) looks exactly like a missing one.
    if (this.deps.mayPullImage && !this.deps.mayPullImage(principal, imageRequest.url))
      throw new NodeError(Errno.ENOENT, imageNotFoundMessage(imageRequest.url));
    const image = await this.deps.resolver.resolve(imageRequest, principal);
    const groups = this.deps.groups;
    if (req.service_group !== undefined && !groups)
      throw new NodeError(Errno.EOPNOTSUPP, 'service groups are not available on this node');
    const group = req.service_group !== undefined && groups ? await groups.attach(principal, req.service_group as ServiceGroupRequest) : undefined;
    const autostart = req.autostart ?? true;
    let records: InstanceRecord[];
    let liveMemory = 0;
    try {
      records = planInstances(req, {
        owner: principal.name,
        now: this.deps.clock.now(),
        image,
        pullPolicy: imageRequest.pullPolicy,
        nameTaken: (name) => this.deps.store.nameTaken(principal.name, name),
      });
      if (group) for (const r of records) r.serviceGroup = { uuid: group.uuid };
      liveMemory = records.reduce((sum, r) => sum + r.memoryMb, 0);
      // Check and insert in one synchronous step, so concurrent creates cannot both slip under the quota.
      this.deps.quotas?.check(principal, { instances: records.length, liveMemoryMb: autostart ? liveMemory : 0 });
      this.deps.store.insertAll(records);
    } catch (err) {
      await group?.rollback();
      throw err;
    }
    const startAll = (): Promise<void> => this.deps.lifecycle.startAll(records, principal, autostart);
    // The memory stays reserved until the starts have made it visible as `starting`/`running`.
    if (this.deps.quotas && autostart) await this.deps.quotas.admitStarts(principal, records, startAll);
    else await startAll();
    const waitErrors = new Map<string, NodeError>();
    const timeoutMs = createWaitMs(req);
    if (autostart && timeoutMs > 0) {
      await Promise.all(
        records.map((r) =>
          this.waitRunning(r.uuid, timeoutMs).catch((err: unknown) => {
            waitErrors.set(r.uuid, err instanceof NodeError ? err : new NodeError(Errno.EIO, 'internal error', 500, {}, { cause: err }));
          }),
        ),
      );
    }
    const fresh = records.map((r) => this.deps.store.get(r.uuid) ?? r);
    return { records: fresh, waitErrors };
  }

  /**
   * Waits until the instance runs, for a create that asked to wait. A start that failed (the
   * platform could not start it: stop reason 4) ends the wait at once with that failure; it
   * does not hold the request until the timeout.
   */
  private async waitRunning(uuid: string, timeoutMs: number): Promise<void> {
    const ac = new AbortController();
    const failed = this.deps.lifecycle.waitFor(uuid, 'stopped', timeoutMs, ac.signal).then(
      (rec) => {
        if (rec && rec.stopReason === StopReasons.platformFailure) {
          throw new NodeError(Errno.EIO, 'the instance could not be started (its log says why)');
        }
        // Stopped for another reason (it ran, then ended): the running wait decides.
        return new Promise<never>(() => undefined);
      },
      () => new Promise<never>(() => undefined),
    );
    try {
      await Promise.race([this.deps.lifecycle.waitFor(uuid, 'running', timeoutMs, ac.signal), failed]);
    } finally {
      ac.abort();
    }
  }

  async start(principal: AccountPrincipal, r: InstanceRecord): Promise<Record<string, unknown>> {
    const previous = r.state;
    const start = (): Promise<InstanceRecord> => this.deps.lifecycle.start(r.uuid, principal);
    const becomesLive = r.state !== 'starting' && r.state !== 'running';
    const after =
      this.deps.quotas && becomesLive && r.owner === principal.name
        ? await this.deps.quotas.admitStarts(principal, [r], start)
        : await start();
    return { uuid: r.uuid, name: r.name, state: after.state, previous_state: previous };
  }

  async stop(r: InstanceRecord, opts: { force?: boolean; drain_timeout_ms?: number }): Promise<Record<string, unknown>> {
    const previous = r.state;
    const after = await this.deps.lifecycle.stop(r.uuid, {
      ...(opts.force !== undefined ? { force: opts.force } : {}),
      ...(opts.drain_timeout_ms !== undefined ? { graceMs: opts.drain_timeout_ms, drainMs: opts.drain_timeout_ms } : {}),
    });
    return { uuid: r.uuid, name: r.name, state: after?.state ?? 'deleted', previous_state: previous };
  }

  async remove(r: InstanceRecord): Promise<Record<string, unknown>> {
    const previous = r.state;
    await this.deps.lifecycle.remove(r.uuid);
    return { uuid: r.uuid, name: r.name, previous_state: previous };
  }

  async patch(principal: AccountPrincipal, r: InstanceRecord, p: PatchRequest): Promise<Record<string, unknown>> {
    const needsStopped = p.memory_mb !== undefined || p.vcpus !== undefined || p.args !== undefined || p.env !== undefined;
    const updated = await this.deps.lifecycle.update(r.uuid, (cur) => {
      if (needsStopped && cur.state !== 'stopped')
        throw new NodeError(Errno.EBUSY, 'memory_mb, vcpus, args and env can only change while the instance is stopped');
      const features = p.features ?? cur.features;
      const policy = p.restart_policy ?? cur.restartPolicy;
      if (features.includes('delete-on-stop') && (policy !== 'never' || cur.scaleToZero !== null))
        throw new NodeError(Errno.EINVAL, 'delete-on-stop needs restart_policy never and no scale_to_zero');
      if (p.memory_mb !== undefined) cur.memoryMb = p.memory_mb;
      if (p.vcpus !== undefined) cur.vcpus = p.vcpus;
      if (p.args !== undefined) cur.args = p.args;
      if (p.env !== undefined) cur.env = { ...p.env };
      if (p.tags !== undefined) cur.tags = p.tags;
      cur.restartPolicy = policy;
      cur.features = features;
    });
    return this.present(principal, updated, true);
  }

  async wait(r: InstanceRecord, state: InstanceState, timeoutMs: number, signal: AbortSignal): Promise<Record<string, unknown>> {
    const after = await this.deps.lifecycle.waitFor(r.uuid, state, timeoutMs, signal);
    return { uuid: r.uuid, name: r.name, state: after?.state ?? 'deleted' };
  }

  log(r: InstanceRecord, offset: number | undefined, limit: number): Record<string, unknown> {
    const read = this.deps.logs.read(r.uuid, offset ?? -limit, limit);
    return { uuid: r.uuid, name: r.name, state: r.state, output: read.output.toString('base64'), available: read.available, range: read.range };
  }

  async metrics(r: InstanceRecord): Promise<Record<string, unknown>> {
    const stats = await this.deps.lifecycle.stats(r.uuid);
    const shown = presentInstance(r, this.deps.clock.now(), false);
    const out: Record<string, unknown> = {
      uuid: r.uuid,
      name: r.name,
      state: r.state,
      uptime_ms: shown.uptime_ms,
      start_count: r.startCount,
      restart_count: r.restartCount,
    };
    if (r.bootTimeUs !== null) out.boot_time_us = r.bootTimeUs;
    if (r.netTimeUs !== null) out.net_time_us = r.netTimeUs;
    if (stats) {
      out.rss_bytes = stats.rssBytes;
      out.cpu_time_us = stats.cpuTimeUs;
      // The contract's unit (cpu_time_us is ukc's older, finer field).
      out.cpu_time_ms = Math.floor(stats.cpuTimeUs / 1000);
    }
    // What the gateway has open to it now. Nothing is ever queued: at hard_limit the gateway
    // answers 503 at once (gateway/gateway.ts), so nqueued is 0 by construction.
    const traffic = this.deps.traffic?.(r.uuid) ?? { inflight: 0, connections: 0 };
    out.nconns = traffic.connections;
    out.nreqs = traffic.inflight;
    out.nqueued = 0;
    return out;
  }
}
