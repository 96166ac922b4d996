/**
 * The gateway's view of a real node: groups from the service group store,
 * members from the instance store, wake/standby through the instance
 * lifecycle, changes from the lifecycle's watchers.
 */
import type { AccountPrincipal } from '../../auth/index.js';
import type { InstanceLifecycle } from '../instances/lifecycle.js';
import type { InstanceRecord } from '../instances/model.js';
import type { InstanceStore } from '../instances/store.js';
import type { ServiceGroupService } from '../services/service.js';
import type { BackendEvent, GatewayBackend, GatewayGroup, GatewayMember } from './backend.js';

export function groupOf(r: InstanceRecord): string | undefined {
  return r.serviceGroup !== null && 'uuid' in r.serviceGroup ? r.serviceGroup.uuid : undefined;
}

/**
 * The gateway's member for an instance of a group. Its address is the record's only when the
 * network's lease for that address belongs to this instance (`addressOwner`): a record that is
 * stale (a crash mid-start, an address since leased to another tenant's instance) routes nowhere.
 * Asked on every change the gateway hears of, so every route change is checked.
 */
function memberOf(r: InstanceRecord, addressOwner: ((ip: string) => string | undefined) | undefined): GatewayMember | undefined {
  const group = groupOf(r);
  if (group === undefined) return undefined;
  const address = r.privateIp !== null && (addressOwner === undefined || addressOwner(r.privateIp) === r.uuid) ? r.privateIp : null;
  return { uuid: r.uuid, group, state: r.state, address, scaleToZero: r.scaleToZero };
}

export interface NodeGatewayBackendDeps {
  services: ServiceGroupService;
  instances: InstanceStore;
  lifecycle: InstanceLifecycle;
  principalFor(owner: string): AccountPrincipal;
  /** Longest a wake waits for the instance to run. */
  wakeTimeoutMs: number;
  /** The instance an address is leased to (the node network); absent: records are trusted. */
  addressOwner?: (ip: string) => string | undefined;
}

export class NodeGatewayBackend implements GatewayBackend {
  constructor(private readonly deps: NodeGatewayBackendDeps) {}

  groups(): GatewayGroup[] {
    return this.deps.services.list().map((g) => ({
      uuid: g.uuid,
      hostnames: g.domains.map((d) => d.fqdn),
      services: g.services,
      softLimit: g.softLimit,
      hardLimit: g.hardLimit,
    }));
  }

  members(): GatewayMember[] {
    const out: GatewayMember[] = [];
    for (const r of this.deps.instances.list()) {
      const m = memberOf(r, this.deps.addressOwner);
      if (m) out.push(m);
    }
    return out;
  }

  async wake(uuid: string): Promise<void> {
    const r = this.deps.instances.get(uuid);
    if (!r) throw new Error('instance not found');
    await this.deps.lifecycle.start(uuid, this.deps.principalFor(r.owner));
    await this.deps.lifecycle.waitFor(uuid, 'running', this.deps.wakeTimeoutMs);
  }

  async standby(uuid: string): Promise<void> {
    await this.deps.lifecycle.standby(uuid);
  }

  subscribe(listener: (event: BackendEvent) => void): () => void {
    return this.deps.lifecycle.watch((change) => {
      if ('deleted' in change) {
        listener({ type: 'member-gone', uuid: change.deleted });
        return;
      }
      const m = memberOf(change.record, this.deps.addressOwner);
      listener(m ? { type: 'member', member: m } : { type: 'member-gone', uuid: change.record.uuid });
    });
  }
}
