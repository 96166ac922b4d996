/**
 * Accounts and quotas on the node API:
 *
 *   POST /v1/users          root only: create accounts; each item answers the new
 *                           account's API token, once (it is stored hashed).
 *                           Body: `{name, quotas?}` or a list of them;
 *                           quotas: `{instances?, live_memory_mb?, services?}`.
 *   GET  /v1/users/{uuid}/quotas   the same, named by the caller's account uuid (or name);
 *                           any other account answers ENOENT.
 *   GET  /v1/users/quotas   the caller's quotas (`hard`), usage (`used`) and per-instance
 *                           `limits`, in the contract's Quotas shape (see presentContractQuotas).
 *
 * Quotas (per account, stored with the account; defaults 16 instances,
 * 4096 MB live memory, 8 services):
 *   - instances:      every instance the account owns, whatever its state;
 *   - live_memory_mb: the sum of `memory_mb` over its `starting` and `running` instances;
 *   - services:       its service groups (made through /v1/services or inline
 *                     with an instance).
 * Instance create and start, and service group create, are refused with EDQUOT
 * (122) when they would go over. Root is not exempt: the root account has its
 * own quotas like any other (raise them with `ukcd accounts quota`). A node
 * without accounts (single tenant, `--no-auth`) has no quotas.
 *
 * Invariant: concurrent requests cannot together exceed a quota — a check and
 * the reservation of what it admits happen in one synchronous step, and the
 * reservation is held until the change is visible in the stores.
 */
import { AccountError, AuthInputError, type AccountQuotas, type AccountStore } from '../auth/index.js';
import type { AccountPrincipal } from '../auth/index.js';
import { Errno, NodeError, overQuota } from './errors.js';
import type { Route } from '../api/index.js';
import { itemFailed, itemOk, nameUuid } from '../api/index.js';
import { v } from '../api/index.js';
import type { InstanceRecord } from './instances/model.js';

/** What an account uses now. */
export interface QuotaUsage {
  instances: number;
  liveMemoryMb: number;
  services: number;
}

export interface QuotaGuardDeps {
  /** Every instance on the node (filtered by owner here). */
  instances(): readonly Pick<InstanceRecord, 'uuid' | 'owner' | 'state' | 'memoryMb' | 'vcpus'>[];
  /** Every service group on the node (absent: the node has none). */
  services?(): readonly { owner: string }[];
}

const LIVE_STATES: ReadonlySet<string> = new Set(['starting', 'running']);

const QUOTA_WORDS: Record<keyof QuotaUsage, { max: keyof AccountQuotas; what: string; unit: string }> = {
  instances: { max: 'maxInstances', what: 'instances', unit: '' },
  liveMemoryMb: { max: 'maxLiveMemoryMb', what: 'live memory', unit: ' MB' },
  services: { max: 'maxServices', what: 'service groups', unit: '' },
};

export class QuotaGuard {
  readonly #deps: QuotaGuardDeps;
  /** Live instances and their vCPUs (the contract's `live_instances`, `live_vcpus`), from the stored records. */
  liveOf(account: string): { instances: number; vcpus: number } {
    const live = { instances: 0, vcpus: 0 };
    for (const r of this.#deps.instances()) {
      if (r.owner !== account || !LIVE_STATES.has(r.state)) continue;
      live.instances++;
      live.vcpus += r.vcpus;
    }
    return live;
  }

  /** Instances admitted to start whose record may not say `starting` yet: counted as live. */
  readonly #starting = new Map<string, number>();

  constructor(deps: QuotaGuardDeps) {
    this.#deps = deps;
  }

  /** What `account` uses now (stored objects, plus starts admitted but not yet recorded). */
  usageOf(account: string): QuotaUsage {
    const usage: QuotaUsage = { instances: 0, liveMemoryMb: 0, services: 0 };
    for (const r of this.#deps.instances()) {
      if (r.owner !== account) continue;
      usage.instances++;
      if (LIVE_STATES.has(r.state) || this.#starting.has(r.uuid)) usage.liveMemoryMb += r.memoryMb;
    }
    for (const g of this.#deps.services?.() ?? []) if (g.owner === account) usage.services++;
    return usage;
  }

  /**
   * Throws EDQUOT naming the first quota `adding` would exceed; no-op for principals without
   * quotas. Callers make the change in the same synchronous step (no await in between).
   */
  check(principal: AccountPrincipal, adding: Partial<QuotaUsage>): void {
    const quotas = principal.quotas;
    if (quotas === undefined) return;
    const usage = this.usageOf(principal.name);
    for (const key of Object.keys(QUOTA_WORDS) as (keyof QuotaUsage)[]) {
      const more = adding[key] ?? 0;
      if (more <= 0) continue;
      const { max, what, unit } = QUOTA_WORDS[key];
      const limit = quotas[max];
      if (usage[key] + more > limit) {
        throw overQuota(`quota exceeded: ${what} ${usage[key]}${unit} in use + ${more}${unit} asked > ${limit}${unit} allowed for account ${principal.name}`);
      }
    }
  }

  /**
   * Admits starting the stored, not yet live `instances` (live memory), then runs `fn` (the
   * starts). Until `fn` settles they count as live, so concurrent starts cannot together
   * go over the quota; once their records say `starting`/`running` they are counted once.
   */
  async admitStarts<T>(principal: AccountPrincipal, instances: readonly Pick<InstanceRecord, 'uuid' | 'memoryMb'>[], fn: () => Promise<T>): Promise<T> {
    const fresh = instances.filter((r) => !this.#starting.has(r.uuid));
    this.check(principal, { liveMemoryMb: fresh.reduce((sum, r) => sum + r.memoryMb, 0) });
    if (principal.quotas === undefined) return fn();
    for (const r of fresh) this.#starting.set(r.uuid, r.memoryMb);
    try {
      return await fn();
    } finally {
      for (const r of fresh) this.#starting.delete(r.uuid);
    }
  }
}

/** Creates accounts for `POST /v1/users` (absent on a node that checks tokens with its control plane). */
export interface UserDirectory {
  create(name: string, quotas: Partial<AccountQuotas>): { name: string; role: string; quotas: AccountQuotas; token: string };
}

/** `UserDirectory` over an accounts database. */
export function userDirectoryFromAccounts(accounts: AccountStore): UserDirectory {
  return {
    create(name, quotas) {
      let account;
      try {
        account = accounts.createAccount(name, { role: 'user', quotas });
      } catch (e) {
        if (e instanceof AccountError && e.kind === 'exists') throw new NodeError(Errno.EEXIST, e.message);
        if (e instanceof AuthInputError) throw new NodeError(Errno.EINVAL, e.message);
        throw e;
      }
      const token = accounts.createToken(account.name, { scope: 'full', label: 'created by POST /v1/users' });
      return { name: account.name, role: account.role, quotas: account.quotas, token: token.text };
    },
  };
}

export interface UserRouteLimits {
  /** Accounts created by one `POST /v1/users`. */
  maxBatchItems: number;
  /** Highest quota value accepted in a request. */
  maxQuotaValue: number;
}

export const DEFAULT_USER_ROUTE_LIMITS: UserRouteLimits = { maxBatchItems: 100, maxQuotaValue: 1_000_000_000 };

function presentQuotas(q: AccountQuotas): Record<string, number> {
  return { instances: q.maxInstances, live_memory_mb: q.maxLiveMemoryMb, services: q.maxServices };
}

/** What a node bounds each instance by (the contract's `limits` of a Quotas answer). */
export interface InstanceBounds {
  minMemoryMb: number;
  maxMemoryMb: number;
  maxVcpus: number;
}

/**
 * The contract's Quotas for `principal`: `uuid` (the account's, as the control plane's
 * organization_uuid), `used`, `hard` and `limits`, plus ukc's `account`. ukc's quota of service
 * groups answers as both `service_groups` and `services` (its older name); live instances are
 * bounded by the instances quota and live vCPUs by that times the largest instance; volumes do
 * not exist here (0). A node without accounts has no quotas: `hard` is absent rather than made up.
 */
export function presentContractQuotas(principal: AccountPrincipal, guard: QuotaGuard, bounds: InstanceBounds): Record<string, unknown> {
  const used = guard.usageOf(principal.name);
  const live = guard.liveOf(principal.name);
  const q = principal.quotas;
  return {
    uuid: nameUuid('account', principal.name),
    account: principal.name,
    used: {
      instances: used.instances,
      live_instances: live.instances,
      live_vcpus: live.vcpus,
      live_memory_mb: used.liveMemoryMb,
      service_groups: used.services,
      services: used.services,
      volumes: 0,
      total_volume_mb: 0,
    },
    ...(q === undefined
      ? {}
      : {
          hard: {
            instances: q.maxInstances,
            live_instances: q.maxInstances,
            live_vcpus: q.maxInstances * bounds.maxVcpus,
            live_memory_mb: q.maxLiveMemoryMb,
            service_groups: q.maxServices,
            services: q.maxServices,
            volumes: 0,
            total_volume_mb: 0,
          },
        }),
    limits: {
      min_memory_mb: bounds.minMemoryMb,
      max_memory_mb: bounds.maxMemoryMb,
      min_vcpus: 1,
      max_vcpus: bounds.maxVcpus,
      min_volume_mb: 0,
      max_volume_mb: 0,
      min_autoscale_size: 0,
      max_autoscale_size: 0,
    },
  };
}

export function userRoutes(deps: { guard: QuotaGuard; directory?: UserDirectory; limits?: Partial<UserRouteLimits>; bounds: InstanceBounds }): Route[] {
  const limits = { ...DEFAULT_USER_ROUTE_LIMITS, ...deps.limits };
  const quota = v.optional(v.int({ min: 0, max: limits.maxQuotaValue }));
  const userSchema = v.object({
    name: v.string({ minLength: 1, maxLength: 64 }),
    quotas: v.optional(v.object({ instances: quota, live_memory_mb: quota, services: quota })),
  });
  const listBody = v.array(userSchema, { minItems: 1, maxItems: limits.maxBatchItems });
  return [
    {
      method: 'POST',
      pattern: '/v1/users',
      collection: 'users',
      async handler(ctx) {
        if (ctx.principal.role !== 'root') throw new NodeError(Errno.EACCES, 'only the platform operator (root) may create accounts');
        if (!deps.directory) throw new NodeError(Errno.EOPNOTSUPP, 'accounts are managed by the control plane, not this node');
        const items = Array.isArray(ctx.body) ? listBody.parse(ctx.body) : [userSchema.parse(ctx.body)];
        const directory = deps.directory;
        return {
          items: items.map((u) => {
            try {
              const q = u.quotas ?? {};
              const created = directory.create(u.name, {
                ...(q.instances !== undefined ? { maxInstances: q.instances } : {}),
                ...(q.live_memory_mb !== undefined ? { maxLiveMemoryMb: q.live_memory_mb } : {}),
                ...(q.services !== undefined ? { maxServices: q.services } : {}),
              });
              return itemOk({ name: created.name, role: created.role, quotas: presentQuotas(created.quotas), token: created.token });
            } catch (err) {
              return itemFailed(err, { name: u.name });
            }
          }),
        };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/users/quotas',
      collection: 'quotas',
      async handler(ctx) {
        if (ctx.body !== undefined) throw new NodeError(Errno.EINVAL, 'GET /v1/users/quotas takes no body');
        return { items: [itemOk(presentContractQuotas(ctx.principal, deps.guard, deps.bounds))] };
      },
    },
    {
      method: 'GET',
      pattern: '/v1/users/{uuid}/quotas',
      collection: 'quotas',
      async handler(ctx) {
        if (ctx.body !== undefined) throw new NodeError(Errno.EINVAL, 'GET /v1/users/{uuid}/quotas takes no body');
        // The caller's own account, by its uuid or name; any other looks missing (a node holds
        // only the caller's quotas, in its token's principal).
        const id = (ctx.params.uuid ?? '').toLowerCase();
        const own = ctx.principal.name;
        if (id !== nameUuid('account', own) && id !== own.toLowerCase()) throw new NodeError(Errno.ENOENT, 'user not found');
        return { items: [itemOk(presentContractQuotas(ctx.principal, deps.guard, deps.bounds))] };
      },
    },
  ];
}
