/**
 * The node's instance network: one Linux bridge, one private address per
 * instance (its netns + veth pair on the bridge), and a hosts file naming every
 * instance `<name>.internal`.
 *
 * Rule between instances (chosen and documented here): the bridge is one flat
 * private network. Instances reach each other and the node (the bridge's
 * address, `.1`) on any port; the node reaches every instance. Nothing is
 * routed or NATed beyond the bridge: the node adds no forwarding or iptables
 * rule, so an instance cannot reach the host's other networks.
 *
 * Warm pool (why: building a netns costs three `ip` processes, 20–40 ms on a
 * busy node, which would otherwise sit inside every instance's boot): the
 * node keeps `poolSize` namespaces ready — veth on the bridge, address and
 * default route set — each holding a lease under a `pool:` key. `attach` takes
 * one synchronously (the address comes with it) and a background refill
 * replaces it; only an empty pool makes a start build its netns on demand.
 *
 * Invariants:
 *  - A lease maps an instance uuid (or a `pool:<netns>` slot) to one host index
 *    in the subnet and names the netns that holds that address; leases are
 *    persisted (atomic write) so addresses survive a restart of the node process
 *    and an adopted instance keeps its IP. One key holds at most one lease.
 *  - Pool slots never outlive the node process: `init` removes slots a previous
 *    process left, `close` removes the current ones; instances' netns stay.
 *  - Netns names are unique per build (never reused), so a netns being removed
 *    and one being built can never be confused, and no node-wide lock is needed.
 *  - The hosts file is rewritten in place (same inode: truncate + write), because
 *    every instance sees it through a read-only bind mount of that inode.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { addressInSubnet, createInstanceNetwork, ensureBridge, parseCidr, removeBridge, removeInstanceNetwork } from '../../sandbox/index.js';

export interface NodeNetworkOptions {
  /** Bridge interface name (≤ 15 characters). */
  bridge: string;
  /** Instance subnet, e.g. 10.88.0.0/16; the bridge takes host index 1. */
  subnet: string;
  /** Where leases.json and hosts live. */
  stateDir: string;
  /** Namespaces kept ready for the next starts (0 = build each on demand). */
  poolSize?: number;
}

export const DEFAULT_NODE_NETWORK = { bridge: 'ukcbr0', subnet: '10.88.0.0/16' } as const;
/** Default number of ready namespaces: covers a burst of starts while the refill catches up. */
export const DEFAULT_NETNS_POOL_SIZE = 8;

const POOL_PREFIX = 'pool:';

interface Lease {
  index: number;
  name: string;
  /** The netns holding the address (absent in leases written before the pool existed). */
  netns?: string;
}

export interface Attachment {
  netnsPath: string;
  netnsName: string;
  /** Address without prefix. */
  ip: string;
}

/** The netns name an instance had before netns names became per-build (old leases without `netns`). */
export function netnsNameFor(uuid: string): string {
  return `ukc-${uuid}`;
}

/** A fresh, never reused netns name (valid for `ip netns`; its veth name is derived from it). */
function freshNetnsName(): string {
  return `ukcn-${randomBytes(8).toString('hex')}`;
}

export class NodeNetwork {
  readonly hostsPath: string;
  readonly poolSize: number;
  private readonly leasesPath: string;
  private readonly leases = new Map<string, Lease>();
  private readonly size: number;
  private readonly gateway: string;
  /** Ready slots (lease keys `pool:<netns>`), oldest first. */
  private readonly pool: string[] = [];
  private refilling: Promise<void> | undefined;
  private closed = false;
  /** Last refill failure, kept for diagnostics (the pool retries on the next take). */
  lastPoolError: Error | undefined;

  constructor(readonly options: NodeNetworkOptions) {
    const { prefix } = parseCidr(options.subnet);
    this.size = 2 ** (32 - prefix);
    this.gateway = addressInSubnet(options.subnet, 1).split('/')[0] as string;
    this.poolSize = options.poolSize ?? DEFAULT_NETNS_POOL_SIZE;
    if (!Number.isInteger(this.poolSize) || this.poolSize < 0) throw new RangeError('poolSize must be a non-negative integer');
    mkdirSync(options.stateDir, { recursive: true });
    this.hostsPath = join(options.stateDir, 'hosts');
    this.leasesPath = join(options.stateDir, 'leases.json');
    if (existsSync(this.leasesPath)) {
      const doc = JSON.parse(readFileSync(this.leasesPath, 'utf8')) as Record<string, Lease>;
      for (const [key, l] of Object.entries(doc)) {
        if (!Number.isInteger(l.index) || typeof l.name !== 'string') continue;
        const lease: Lease = { index: l.index, name: l.name };
        if (typeof l.netns === 'string') lease.netns = l.netns;
        this.leases.set(key, lease);
      }
    }
    this.writeHosts();
  }

  /** The node's own address on the bridge. */
  get gatewayIp(): string {
    return this.gateway;
  }

  /** Ready namespaces right now (tests, diagnostics). */
  get poolReady(): number {
    return this.pool.length;
  }

  /** Creates the bridge, drops pool slots a previous node process left, and starts filling the pool. */
  async init(): Promise<void> {
    await ensureBridge({ name: this.options.bridge, address: addressInSubnet(this.options.subnet, 1) });
    const stale = [...this.leases.keys()].filter((k) => k.startsWith(POOL_PREFIX));
    for (const key of stale) {
      await removeInstanceNetwork(key.slice(POOL_PREFIX.length));
      this.leases.delete(key);
    }
    if (stale.length > 0) this.saveLeases();
    this.refill();
  }

  /** Resolves once the pool is full (or a refill failed); tests and benches use it to start from a warm node. */
  async poolFilled(): Promise<void> {
    while (this.refilling) await this.refilling;
  }

  /** Stops refilling and removes every pool slot; instances' namespaces are left alone. */
  async close(): Promise<void> {
    this.closed = true;
    await this.poolFilled();
    const slots = this.pool.splice(0);
    for (const key of slots) {
      await removeInstanceNetwork(key.slice(POOL_PREFIX.length));
      this.leases.delete(key);
    }
    if (slots.length > 0) this.saveLeases();
  }

  /** Removes the bridge (tests, decommissioning). */
  async destroy(): Promise<void> {
    await removeBridge(this.options.bridge);
  }

  /** Gives `uuid` an address and a netns on the bridge: a ready pool slot when there is one, else built now. */
  async attach(uuid: string, name: string): Promise<Attachment> {
    const old = this.leases.get(uuid);
    if (old) {
      // A netns left by a run that died with a previous node process goes first.
      await removeInstanceNetwork(old.netns ?? netnsNameFor(uuid));
      this.leases.delete(uuid);
    }
    const slot = this.pool.shift();
    let lease: Lease;
    if (slot) {
      const pooled = this.leases.get(slot) as Lease;
      this.leases.delete(slot);
      lease = { index: pooled.index, name, netns: pooled.netns as string };
      this.leases.set(uuid, lease);
      this.saveLeases();
      this.writeHosts();
    } else {
      lease = { index: this.freeIndex(), name, netns: freshNetnsName() };
      this.leases.set(uuid, lease);
      this.saveLeases();
      this.writeHosts();
      try {
        await this.build(lease);
      } catch (err) {
        this.leases.delete(uuid);
        this.saveLeases();
        this.writeHosts();
        throw err;
      }
    }
    this.refill();
    const netnsName = lease.netns as string;
    return { netnsPath: `/run/netns/${netnsName}`, netnsName, ip: addressInSubnet(this.options.subnet, lease.index).split('/')[0] as string };
  }

  /** Removes the instance's netns and gives the address back. */
  async detach(uuid: string): Promise<void> {
    const lease = this.leases.get(uuid);
    await removeInstanceNetwork(lease?.netns ?? netnsNameFor(uuid));
    if (lease && this.leases.get(uuid) === lease) {
      this.leases.delete(uuid);
      this.saveLeases();
      this.writeHosts();
    }
  }

  private freeIndex(): number {
    const used = new Set([...this.leases.values()].map((l) => l.index));
    for (let index = 2; index <= this.size - 2; index++) if (!used.has(index)) return index;
    throw new Error('no free address in the instance subnet');
  }

  private async build(lease: Lease): Promise<void> {
    await createInstanceNetwork({
      name: lease.netns as string,
      bridge: this.options.bridge,
      address: addressInSubnet(this.options.subnet, lease.index),
      gateway: this.gateway,
    });
  }

  /** Tops the pool up in the background, one slot at a time (never more than one refill loop). */
  private refill(): void {
    if (this.refilling || this.closed || this.pool.length >= this.poolSize) return;
    this.refilling = (async () => {
      while (!this.closed && this.pool.length < this.poolSize) {
        const netns = freshNetnsName();
        const key = POOL_PREFIX + netns;
        let lease: Lease;
        try {
          lease = { index: this.freeIndex(), name: '', netns };
        } catch (err) {
          this.lastPoolError = err as Error;
          return;
        }
        // The lease is recorded before the build so a crash mid-build leaves a slot init() can clean.
        this.leases.set(key, lease);
        this.saveLeases();
        try {
          await this.build(lease);
        } catch (err) {
          this.lastPoolError = err as Error;
          this.leases.delete(key);
          this.saveLeases();
          return;
        }
        this.pool.push(key);
      }
    })().finally(() => {
      this.refilling = undefined;
    });
  }

  /**
   * Atomic (temp file + rename) but not fsynced, on purpose: leases describe
   * namespaces that live in the kernel, so they only need to survive the node
   * process dying (the page cache keeps the file), not the machine — after a
   * reboot no netns is left to describe. An fsync here cost 3–20 ms per start.
   */
  private saveLeases(): void {
    const tmp = `${this.leasesPath}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(Object.fromEntries(this.leases)));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.leasesPath);
  }

  private writeHosts(): void {
    const lines = ['127.0.0.1\tlocalhost', `${this.gateway}\tnode.internal`];
    for (const [key, l] of this.leases) {
      if (key.startsWith(POOL_PREFIX)) continue;
      lines.push(`${addressInSubnet(this.options.subnet, l.index).split('/')[0]}\t${l.name}.internal`);
    }
    const fd = openSync(this.hostsPath, existsSync(this.hostsPath) ? 'r+' : 'w', 0o644);
    try {
      const data = Buffer.from(lines.join('\n') + '\n');
      // Write first, then cut: a reader never sees an empty file.
      writeSync(fd, data, 0, data.length, 0);
      ftruncateSync(fd, data.length);
    } finally {
      closeSync(fd);
    }
  }
}
