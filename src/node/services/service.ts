/**
 * Business logic behind `/v1/services`: service groups (a set of public
 * ports and domains in front of the instances that name the group).
 *
 * - A group made through `/v1/services` is persistent; one described inline in
 *   `POST /v1/instances` is ephemeral and is deleted with its last instance.
 * - Domains: `{name}` without a dot is a subdomain of the node's zone
 *   (`<name>.<metro>.<domain>`); with dots it is a custom FQDN served with a
 *   matching certificate from `/v1/certificates`. A group without domains gets
 *   `<group-name>.<metro>.<domain>`. A hostname belongs to at most one group.
 * - A group with instances cannot be deleted (EBUSY).
 * - Every change is followed by `onChange` (the gateway opening or closing
 *   public ports); when that fails the change is undone and reported.
 */
import { randomUUID } from 'node:crypto';
import { Errno, NodeError } from '../errors.js';
import type { AccountPrincipal, PlatformAction, Policy } from '../../auth/index.js';
import type { Clock } from '../clock.js';
import { v } from '../../api/index.js';
import type { InstanceRecord } from '../instances/model.js';
import { HANDLERS, normalizeService, serviceRulesViolation } from '../../client/index.js';
import { DNS_LABEL, generateServiceName, isHostname, isPlatformDomain, serviceFqdn } from './names.js';
import type { DomainRecord, ServiceGroupRecord, ServiceGroupStore } from './store.js';
import type { Selector } from './crud-routes.js';
import type { QuotaGuard } from '../users.js';

export interface ServiceLimits {
  maxServicesPerGroup: number;
  maxDomainsPerGroup: number;
  /** Upper bound of soft_limit / hard_limit. */
  maxConcurrencyLimit: number;
  /** Generated-name collisions tolerated before giving up. */
  maxNameAttempts: number;
}

export const DEFAULT_SERVICE_LIMITS: ServiceLimits = {
  maxServicesPerGroup: 64,
  maxDomainsPerGroup: 64,
  maxConcurrencyLimit: 1_000_000,
  maxNameAttempts: 16,
};

const ref = v.string({ minLength: 1, maxLength: 128 });

export function serviceSchema() {
  return v.object({
    port: v.int({ min: 1, max: 65535 }),
    destination_port: v.optional(v.int({ min: 1, max: 65535 })),
    handlers: v.optional(v.array(v.oneOf(HANDLERS), { maxItems: 3 })),
  });
}

export function domainSchema() {
  return v.object({
    name: v.string({ minLength: 1, maxLength: 253 }),
    certificate: v.optional(
      v.refine(v.object({ uuid: v.optional(ref), name: v.optional(ref) }), (c) =>
        (c.uuid === undefined) === (c.name === undefined) ? 'exactly one of uuid or name' : undefined,
      ),
    ),
  });
}

/** The fields describing a new group (`POST /v1/services`; inline in instance create without `name`). */
export function groupFieldsShape(limits: ServiceLimits) {
  return {
    services: v.array(serviceSchema(), { minItems: 1, maxItems: limits.maxServicesPerGroup }),
    domains: v.optional(v.array(domainSchema(), { maxItems: limits.maxDomainsPerGroup })),
    soft_limit: v.optional(v.int({ min: 1, max: limits.maxConcurrencyLimit })),
    hard_limit: v.optional(v.int({ min: 1, max: limits.maxConcurrencyLimit })),
  };
}

function groupRulesViolation(g: { services?: Parameters<typeof serviceRulesViolation>[0]; soft_limit?: number; hard_limit?: number }): string | undefined {
  if (g.soft_limit !== undefined && g.hard_limit !== undefined && g.soft_limit > g.hard_limit)
    return 'soft_limit must not exceed hard_limit';
  return g.services ? serviceRulesViolation(g.services) : undefined;
}

export function createServiceSchema(limits: ServiceLimits) {
  return v.refine(
    v.object({
      name: v.optional(v.string({ pattern: DNS_LABEL, patternHint: 'must be a DNS label: a-z, 0-9 and -, at most 63' })),
      ...groupFieldsShape(limits),
      // The contract's autokill of idle groups: accepted as JSON, refused in create (EOPNOTSUPP).
      autokill: v.optional(v.anyValue()),
    }),
    groupRulesViolation,
  );
}
export type CreateServiceRequest = v.Infer<ReturnType<typeof createServiceSchema>>;

export function patchServiceShape(limits: ServiceLimits) {
  return {
    services: v.optional(v.array(serviceSchema(), { minItems: 1, maxItems: limits.maxServicesPerGroup })),
    domains: v.optional(v.array(domainSchema(), { maxItems: limits.maxDomainsPerGroup })),
    soft_limit: v.optional(v.int({ min: 1, max: limits.maxConcurrencyLimit })),
    hard_limit: v.optional(v.int({ min: 1, max: limits.maxConcurrencyLimit })),
  };
}
export type PatchServiceRequest = v.InferShape<ReturnType<typeof patchServiceShape>>;

export interface CertificateLookup {
  /** The certificate `sel` names, visible to `principal` (ENOENT otherwise). */
  find(principal: AccountPrincipal, sel: Selector): { uuid: string; name: string; hostnames: string[] };
}

export interface ServiceGroupDeps {
  store: ServiceGroupStore;
  /** Instances naming the group (current records). */
  members(groupUuid: string): InstanceRecord[];
  policy: Policy;
  clock: Clock;
  /** Public zone pieces: FQDNs are `<label>.<metro>.<domain>`. */
  metro: string;
  domain: string;
  certificates?: CertificateLookup;
  limits: ServiceLimits;
  onChange(): Promise<void>;
  /** Per-account quotas (service groups count, EDQUOT); absent: none. */
  quotas?: QuotaGuard;
  /** The gateway's per-instance cap for groups without a hard_limit (answered as their hard_limit). */
  defaultHardLimit?: number;
}

/** `defaultHardLimit` when the composition names none (the gateway's own default). */
const DEFAULT_HARD_LIMIT = 10_000;

export class ServiceGroupService {
  constructor(private readonly deps: ServiceGroupDeps) {}

  get zone(): string {
    return `${this.deps.metro}.${this.deps.domain}`;
  }

  findVisible(principal: AccountPrincipal, sel: Selector, action: PlatformAction): ServiceGroupRecord {
    const g = sel.uuid !== undefined ? this.deps.store.get(sel.uuid) : this.deps.store.getByName(principal.name, sel.name ?? '');
    const obj = g ? { kind: 'service' as const, owner: g.owner } : undefined;
    if (!g || !obj || !this.deps.policy.visible(principal, obj)) throw new NodeError(Errno.ENOENT, 'service group not found');
    if (action !== 'read' && !this.deps.policy.authorize(principal, action, obj).allow)
      throw new NodeError(Errno.EACCES, `not allowed to ${action} this service group`);
    return g;
  }

  listVisible(principal: AccountPrincipal): ServiceGroupRecord[] {
    return this.deps.store
      .list()
      .filter((g) => this.deps.policy.visible(principal, { kind: 'service', owner: g.owner }));
  }

  list(): ServiceGroupRecord[] {
    return this.deps.store.list();
  }

  get(uuid: string): ServiceGroupRecord | undefined {
    return this.deps.store.get(uuid);
  }

  private domainsOf(principal: AccountPrincipal, name: string, domains: CreateServiceRequest['domains'], self?: string): DomainRecord[] {
    const wanted = domains && domains.length > 0 ? domains : [{ name }];
    const out: DomainRecord[] = [];
    const seen = new Set<string>();
    for (const d of wanted) {
      const raw = d.name.toLowerCase().replace(/\.$/, '');
      // Any dot (a trailing one too, `localhost.`) makes it an FQDN the user names; a bare label is the platform's `<label>.<zone>`.
      const named = d.name.includes('.');
      const fqdn = named ? raw : serviceFqdn(raw, this.deps.metro, this.deps.domain);
      if (!isHostname(fqdn)) throw new NodeError(Errno.EINVAL, `domain ${d.name} is not a valid hostname`);
      // Checked before any lookup: a reserved name answers the same whether or not someone holds it.
      if (named && isPlatformDomain(fqdn, this.deps.domain))
        throw new NodeError(Errno.EINVAL, `domain ${fqdn} is reserved by the platform (give a name without dots for <name>.${this.zone})`);
      if (seen.has(fqdn)) throw new NodeError(Errno.EINVAL, `domain ${fqdn} is listed twice`);
      seen.add(fqdn);
      const owner = this.deps.store.domainOwner(fqdn);
      if (owner !== undefined && owner !== self) throw new NodeError(Errno.EEXIST, `domain ${fqdn} is already used by another service group`);
      const rec: DomainRecord = { fqdn };
      if (d.certificate) {
        if (!this.deps.certificates) throw new NodeError(Errno.EOPNOTSUPP, 'certificates are not available on this node');
        const cert = this.deps.certificates.find(principal, d.certificate);
        if (!cert.hostnames.some((h) => hostnameMatches(h, fqdn)))
          throw new NodeError(Errno.EINVAL, `certificate ${cert.name} does not cover ${fqdn} (it covers ${cert.hostnames.join(', ')})`);
        rec.certificate = { uuid: cert.uuid, name: cert.name };
      }
      out.push(rec);
    }
    return out;
  }

  /** Creates a group; `persistent: false` for one described inline with an instance. */
  async create(principal: AccountPrincipal, req: CreateServiceRequest, persistent = true): Promise<ServiceGroupRecord> {
    if (req.autokill !== undefined) throw new NodeError(Errno.EOPNOTSUPP, 'autokill of service groups is not supported on this node');
    const violation = groupRulesViolation(req);
    if (violation !== undefined) throw new NodeError(Errno.EINVAL, violation);
    // Checked here and inserted below with no await in between: concurrent creates cannot both pass.
    this.deps.quotas?.check(principal, { services: 1 });
    let name = req.name;
    if (name === undefined) {
      for (let i = 0; i < this.deps.limits.maxNameAttempts && name === undefined; i++) {
        const candidate = generateServiceName();
        if (!this.deps.store.nameTaken(principal.name, candidate) && this.deps.store.domainOwner(serviceFqdn(candidate, this.deps.metro, this.deps.domain)) === undefined)
          name = candidate;
      }
      if (name === undefined) throw new NodeError(Errno.EEXIST, 'could not find a free service group name');
    } else if (this.deps.store.nameTaken(principal.name, name)) {
      throw new NodeError(Errno.EEXIST, `a service group named ${name} already exists`);
    }
    const g: ServiceGroupRecord = {
      uuid: randomUUID(),
      name,
      owner: principal.name,
      createdAt: this.deps.clock.now(),
      services: req.services.map(normalizeService),
      domains: this.domainsOf(principal, name, req.domains),
      softLimit: req.soft_limit ?? null,
      hardLimit: req.hard_limit ?? null,
      persistent,
    };
    this.deps.store.insert(g);
    try {
      await this.deps.onChange();
    } catch (err) {
      this.deps.store.delete(g.uuid);
      await this.deps.onChange().catch(() => undefined);
      throw err;
    }
    return g;
  }

  async patch(principal: AccountPrincipal, g: ServiceGroupRecord, p: PatchServiceRequest): Promise<ServiceGroupRecord> {
    const before = structuredClone(g);
    const next = structuredClone(g);
    if (p.services !== undefined) next.services = p.services.map(normalizeService);
    if (p.soft_limit !== undefined) next.softLimit = p.soft_limit;
    if (p.hard_limit !== undefined) next.hardLimit = p.hard_limit;
    const violation = groupRulesViolation({
      services: next.services,
      ...(next.softLimit !== null ? { soft_limit: next.softLimit } : {}),
      ...(next.hardLimit !== null ? { hard_limit: next.hardLimit } : {}),
    });
    if (violation !== undefined) throw new NodeError(Errno.EINVAL, violation);
    if (p.domains !== undefined) next.domains = this.domainsOf(principal, next.name, p.domains, g.uuid);
    this.deps.store.put(next);
    try {
      await this.deps.onChange();
    } catch (err) {
      this.deps.store.put(before);
      await this.deps.onChange().catch(() => undefined);
      throw err;
    }
    return next;
  }

  async remove(g: ServiceGroupRecord): Promise<Record<string, unknown>> {
    const members = this.deps.members(g.uuid);
    if (members.length > 0)
      throw new NodeError(Errno.EBUSY, `service group ${g.name} still has ${members.length} instance(s); delete or move them first`);
    this.deps.store.delete(g.uuid);
    await this.deps.onChange().catch(() => undefined);
    return { uuid: g.uuid, name: g.name };
  }

  /** Deletes an ephemeral group once no instance names it any more. */
  async releaseIfUnused(uuid: string): Promise<void> {
    const g = this.deps.store.get(uuid);
    if (!g || g.persistent || this.deps.members(uuid).length > 0) return;
    this.deps.store.delete(uuid);
    await this.deps.onChange().catch(() => undefined);
  }

  /** True when a certificate is referenced by some group's domain. */
  certificateInUse(certUuid: string): boolean {
    return this.deps.store.list().some((g) => g.domains.some((d) => d.certificate?.uuid === certUuid));
  }

  present(principal: AccountPrincipal, g: ServiceGroupRecord, details: boolean): Record<string, unknown> {
    if (!details) return { uuid: g.uuid, name: g.name };
    const out: Record<string, unknown> = {
      uuid: g.uuid,
      name: g.name,
      created_at: new Date(g.createdAt).toISOString(),
      persistent: g.persistent,
      autoscale: false,
      services: g.services,
      domains: g.domains.map((d) => (d.certificate ? { fqdn: d.fqdn, certificate: d.certificate } : { fqdn: d.fqdn })),
      instances: this.deps.members(g.uuid).map((r) => ({ uuid: r.uuid, name: r.name })),
    };
    // The contract requires both: the limits in effect (the gateway's cap without a hard_limit;
    // without a soft_limit no replica is woken early, as at the hard limit).
    out.hard_limit = g.hardLimit ?? this.deps.defaultHardLimit ?? DEFAULT_HARD_LIMIT;
    out.soft_limit = g.softLimit ?? out.hard_limit;
    if (principal.role === 'root') out.owner = g.owner;
    return out;
  }

  /** The `service_group` field of an instance answer. */
  describeForInstance(uuid: string): Record<string, unknown> | undefined {
    const g = this.deps.store.get(uuid);
    if (!g) return undefined;
    return { uuid: g.uuid, name: g.name, domains: g.domains.map((d) => ({ fqdn: d.fqdn })) };
  }
}

/** Certificate hostname (possibly `*.zone`) against a concrete FQDN; a wildcard covers exactly one label. */
export function hostnameMatches(pattern: string, fqdn: string): boolean {
  const p = pattern.toLowerCase();
  if (!p.startsWith('*.')) return p === fqdn;
  const dot = fqdn.indexOf('.');
  return dot > 0 && fqdn.slice(dot + 1) === p.slice(2);
}
