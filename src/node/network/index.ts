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
 * Namespaces are built and removed over rtnetlink by the `ukc-netns` helper
 * (src/sandbox/network.ts), about 1 ms each; concurrent builds are pipelined
 * into it, so a burst of starts pays no process spawn per netns.
 *
 * Warm pool (why: even 1–3 ms, and a round trip to the helper, would sit
 * inside every instance's boot): the node keeps `poolSize` namespaces ready —
 * veth on the bridge, address and default route set — each holding a lease
 * under a `pool:` key. `attach` takes one synchronously (the address comes
 * with it) and a background refill replaces the missing ones, all requested at
 * once; only an empty pool makes a start build its netns on demand.
 *
 * Invariants:
 *  - Leases live in leases.json (snapshot) + leases.log (changes since), see
 *    setLease for why.
 *  - A lease maps an instance uuid (or a `pool:<netns>` slot) to one host index
 *    in the subnet and names the netns that holds that address; leases are
 *    persisted (atomic write) so addresses survive a restart of the node process
 *    and an adopted instance keeps its IP. One key holds at most one lease.
 *  - Pool slots never outlive the node process: `init` removes slots a previous
 *    process left, `close` removes the current ones; instances' netns stay.
 *  - Netns names are unique per build (never reused), so a netns being removed
 *    and one being built can never be confused, and no node-wide lock is needed.
 *  - Recovery trusts the kernel, not a record: an adopted run keeps its address only when its
 *    init is in the netns its lease names (`verifiedAddress`); every other instance lease is
 *    swept (`sweep`) once the runtime killed what dead runs left, so an address is never handed
 *    out while an orphaned netns on the bridge still holds it.
 *  - The hosts file is rewritten in place (same inode: truncate + write), because
 *    every instance sees it through a read-only bind mount of that inode.
 */
import { randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, existsSync, ftruncateSync, writeFileSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, statSync, writeSync } from 'node:fs';
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
  /** Lease changes appended to leases.log before the snapshot is rewritten. */
  leaseLogMaxLines?: number;
}

export const DEFAULT_NODE_NETWORK = { bridge: 'ukcbr0', subnet: '10.88.0.0/16' } as const;
/** Default number of ready namespaces: covers a burst of starts while the refill catches up. */
export const DEFAULT_NETNS_POOL_SIZE = 8;

export const DEFAULT_LEASE_LOG_MAX_LINES = 10_000;

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

function parseLease(l: unknown): Lease | undefined {
  if (typeof l !== 'object' || l === null) return undefined;
  const { index, name, netns } = l as Record<string, unknown>;
  if (!Number.isInteger(index) || typeof name !== 'string') return undefined;
  const lease: Lease = { index: index as number, name };
  if (typeof netns === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(netns)) lease.netns = netns;
  return lease;
}

/**
 * The leases a node's network state directory holds: the leases.json snapshot
 * with the changes of leases.log applied (a torn last line is ignored). Keys are
 * instance uuids or `pool:<netns>` slots; `netns` names the namespace.
 */
export function readLeases(stateDir: string): Map<string, { index: number; name: string; netns?: string }> {
  const out = new Map<string, Lease>();
  const snapshot = join(stateDir, 'leases.json');
  if (existsSync(snapshot)) {
    const doc = JSON.parse(readFileSync(snapshot, 'utf8')) as Record<string, unknown>;
    for (const [key, l] of Object.entries(doc)) {
      const lease = parseLease(l);
      if (lease) out.set(key, lease);
    }
  }
  const log = join(stateDir, 'leases.log');
  if (existsSync(log)) {
    for (const line of readFileSync(log, 'utf8').split('\n')) {
      let entry: { k?: unknown; l?: unknown };
      try {
        entry = JSON.parse(line) as { k?: unknown; l?: unknown };
      } catch {
        continue; // empty or torn line
      }
      if (typeof entry.k !== 'string') continue;
      const lease = parseLease(entry.l);
      if (lease) out.set(entry.k, lease);
      else if (entry.l === null) out.delete(entry.k);
    }
  }
  return out;
}

export class NodeNetwork {
  readonly hostsPath: string;
  readonly poolSize: number;
  private readonly leasesPath: string;
  private readonly logPath: string;
  private logLines = 0;
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
    this.logPath = join(options.stateDir, 'leases.log');
    for (const [key, lease] of readLeases(options.stateDir)) this.leases.set(key, lease);
    this.compact();
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
    await Promise.all(stale.map((key) => this.dropSlot(key)));
    this.refill();
  }

  /** Removes a pool slot's netns, then its lease; a slot that cannot be removed keeps its lease (and address). */
  private async dropSlot(key: string): Promise<void> {
    try {
      await removeInstanceNetwork(key.slice(POOL_PREFIX.length));
      this.setLease(key, undefined);
    } catch (err) {
      this.lastPoolError = err as Error;
    }
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
    // Sent together, so the helper removes them as one batch.
    await Promise.all(slots.map((key) => this.dropSlot(key)));
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
      this.setLease(uuid, undefined);
    }
    const slot = this.pool.shift();
    let lease: Lease;
    if (slot) {
      const pooled = this.leases.get(slot) as Lease;
      lease = { index: pooled.index, name, netns: pooled.netns as string };
      // The instance's lease is recorded before the slot's is dropped: a crash in between leaves both, never neither.
      this.setLease(uuid, lease);
      this.setLease(slot, undefined);
      this.writeHosts();
    } else {
      lease = { index: this.freeIndex(), name, netns: freshNetnsName() };
      this.setLease(uuid, lease);
      this.writeHosts();
      try {
        await this.build(lease);
      } catch (err) {
        this.setLease(uuid, undefined);
        this.writeHosts();
        throw err;
      }
    }
    this.refill();
    const netnsName = lease.netns as string;
    return { netnsPath: `/run/netns/${netnsName}`, netnsName, ip: addressInSubnet(this.options.subnet, lease.index).split('/')[0] as string };
  }

  /**
   * The instance whose lease holds `ip` (undefined: a pool slot, or nobody). The gateway asks this
   * on every route change: it routes only to addresses leased to that very instance.
   */
  ownerOf(ip: string): string | undefined {
    for (const [key, lease] of this.leases) {
      if (key.startsWith(POOL_PREFIX)) continue;
      if (this.ipOf(lease) === ip) return key;
    }
    return undefined;
  }

  /**
   * The runtime's truth about a run's address, for recovery: the address of `uuid`'s lease, but
   * only when the process `pid` (the run's init) really is in the netns that lease names (same
   * nsfs inode). Undefined when there is no lease, the netns is gone, or the process is elsewhere:
   * the run cannot be trusted with an address and must not be adopted.
   */
  verifiedAddress(uuid: string, pid: number): string | undefined {
    const lease = this.leases.get(uuid);
    if (!lease) return undefined;
    try {
      const ino = statSync(`/run/netns/${lease.netns ?? netnsNameFor(uuid)}`).ino;
      if (readlinkSync(`/proc/${pid}/ns/net`) !== `net:[${ino}]`) return undefined;
    } catch {
      return undefined;
    }
    return this.ipOf(lease);
  }

  /**
   * Recovery's sweep: removes the netns and lease of every instance not in `keep` (the runs the
   * node re-adopted). Their processes are gone (or killed by the runtime's own sweep first), so
   * an address freed here is held by nobody on the bridge when it is leased again.
   */
  async sweep(keep: ReadonlySet<string>): Promise<string[]> {
    const swept: string[] = [];
    const stale = [...this.leases.entries()].filter(([key]) => !key.startsWith(POOL_PREFIX) && !keep.has(key));
    await Promise.all(
      stale.map(async ([key, lease]) => {
        try {
          await removeInstanceNetwork(lease.netns ?? netnsNameFor(key));
        } catch (err) {
          this.lastPoolError = err as Error;
          return; // the netns may still hold the address: the lease stays
        }
        if (this.leases.get(key) === lease) this.setLease(key, undefined);
        swept.push(key);
      }),
    );
    if (swept.length > 0) this.writeHosts();
    return swept;
  }

  private ipOf(lease: Lease): string {
    return addressInSubnet(this.options.subnet, lease.index).split('/')[0] as string;
  }

  /** Removes the instance's netns and gives the address back (kept when the removal failed: the netns may still hold it). */
  async detach(uuid: string): Promise<void> {
    const lease = this.leases.get(uuid);
    await removeInstanceNetwork(lease?.netns ?? netnsNameFor(uuid));
    if (lease && this.leases.get(uuid) === lease) {
      this.setLease(uuid, undefined);
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

  /**
   * Tops the pool up in the background (never more than one refill loop): each
   * round requests every missing slot at once, so the helper builds them back
   * to back. Stops at the first failure (kept in lastPoolError; the next take retries).
   */
  private refill(): void {
    if (this.refilling || this.closed || this.pool.length >= this.poolSize) return;
    this.refilling = (async () => {
      // Never inside the attach that triggered it: that start is timed.
      await new Promise((r) => setImmediate(r));
      while (!this.closed && this.pool.length < this.poolSize) {
        const round: Array<{ key: string; lease: Lease }> = [];
        try {
          for (let k = this.pool.length; k < this.poolSize; k++) {
            const netns = freshNetnsName();
            const lease: Lease = { index: this.freeIndex(), name: '', netns };
            // The lease is recorded before the build so a crash mid-build leaves a slot init() can clean.
            this.setLease(POOL_PREFIX + netns, lease);
            round.push({ key: POOL_PREFIX + netns, lease });
          }
        } catch (err) {
          this.lastPoolError = err as Error;
        }
        const built = await Promise.allSettled(round.map(({ lease }) => this.build(lease)));
        let failed = round.length === 0;
        built.forEach((r, k) => {
          const { key } = round[k] as { key: string };
          if (r.status === 'fulfilled') {
            this.pool.push(key);
          } else {
            failed = true;
            this.lastPoolError = r.reason as Error;
            this.setLease(key, undefined);
          }
        });
        if (failed) return;
      }
    })().finally(() => {
      this.refilling = undefined;
    });
  }

  /**
   * Records a lease change: in memory, then one appended line in leases.log.
   * An append is cheap; replacing leases.json by rename is not (ext4 flushes
   * the new file's data on a rename-over, 3–15 ms on a busy disk), so the
   * snapshot is only rewritten by compact() — at construction and every
   * `leaseLogMaxLines` changes. Not fsynced, on purpose: leases describe
   * namespaces that live in the kernel, so they must survive the node process
   * dying (the page cache keeps them), not the machine (after a reboot no netns
   * is left to describe).
   */
  private setLease(key: string, lease: Lease | undefined): void {
    if (lease) this.leases.set(key, lease);
    else this.leases.delete(key);
    appendFileSync(this.logPath, JSON.stringify({ k: key, l: lease ?? null }) + '\n', { mode: 0o600 });
    if (++this.logLines >= (this.options.leaseLogMaxLines ?? DEFAULT_LEASE_LOG_MAX_LINES)) this.compact();
  }

  /** Writes the whole lease table to leases.json (temp file + rename) and empties the log. */
  private compact(): void {
    const tmp = `${this.leasesPath}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(Object.fromEntries(this.leases)));
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.leasesPath);
    // The snapshot holds everything the log said; a crash before this cut only replays changes already in it.
    writeFileSync(this.logPath, '', { mode: 0o600 });
    this.logLines = 0;
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
