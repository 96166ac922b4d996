/**
 * The node's instance network: one Linux bridge, one private address per
 * instance (its netns + veth pair on the bridge), and per account a hosts file
 * naming that account's instances `<name>.internal` (hosts.ts).
 *
 * Rule between instances: an instance reaches only its own account's
 * instances, and the node only as replies on connections the node opened (the
 * gateway path); its source MAC and IP are pinned to its lease. nftables
 * tables per bridge enforce it (firewall.ts, where the rules are spelled out);
 * `isolation: false` turns them off (a flat bridge, as before). Nothing is
 * routed or NATed beyond the bridge.
 *
 * Order that keeps it fail-closed: a netns's port is listed and pinned as soon
 * as it is built (pool slot or on demand) — from then on it reaches nobody but
 * the node's replies; at attach the port gets its account's tenant mark. For a
 * pool slot that change runs while the launcher starts (`Attachment.ready`;
 * the driver ends the run if it fails), so neither the boot nor the start's
 * answer waits for an nft run; until it lands the instance cannot reach its
 * peers, nor they it (the gateway path works: the pins were set at build).
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
import { appendFileSync, closeSync, existsSync, writeFileSync, mkdirSync, openSync, readFileSync, readlinkSync, renameSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { addressInSubnet, createInstanceNetwork, ensureBridge, hostVethName, parseCidr, removeBridge, removeInstanceNetwork } from '../../sandbox/index.js';
import { TenantFirewall, type FirewallPort } from './firewall.js';
import { TenantHosts } from './hosts.js';
import { CommandShell } from './shell.js';
import { Errno, NodeError } from '../errors.js';

export { TenantFirewall, firewallRuleset, firewallTableName, NftError, type FirewallOptions, type FirewallPort, type PinnedPort } from './firewall.js';
export { TenantHosts, type HostsEntry } from './hosts.js';

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
  /** Per-account isolation and anti-spoofing in nftables (default true; false = one flat bridge). */
  isolation?: boolean;
  /** TCP ports on the bridge address that instances may connect to (default none). */
  hostTcpPorts?: readonly number[];
  /** Ports the bridge may take (instances plus pool slots); default BRIDGE_MAX_PORTS, the kernel's limit. */
  maxPorts?: number;
}

export const DEFAULT_NODE_NETWORK = { bridge: 'ukcbr0', subnet: '10.88.0.0/16' } as const;
/** Default number of ready namespaces: covers a burst of starts while the refill catches up. */
export const DEFAULT_NETNS_POOL_SIZE = 8;

export const DEFAULT_LEASE_LOG_MAX_LINES = 10_000;

/**
 * Ports one Linux bridge takes (BR_MAX_PORTS is 1024, the 1024th `ip link set master`
 * answers EXFULL "Exchange full"): every instance and every ready pool namespace is one
 * port, so one node bridge holds at most this many of them together.
 */
export const BRIDGE_MAX_PORTS = 1023;

const POOL_PREFIX = 'pool:';
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** The MAC of eth0 inside a netns (one `ip` run in the command shell; pool builds pay it in the background). */
async function readMac(shell: CommandShell, netns: string): Promise<string> {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(netns)) throw new TypeError(`invalid netns name: ${netns}`);
  const r = await shell.run(`ip -n ${netns} -o link show dev eth0`);
  const m = / link\/ether ([0-9a-f:]{17}) /.exec(r.output);
  if (r.code !== 0 || !m || !MAC.test(m[1]!)) throw new Error(`netns ${netns}: no MAC on eth0 (${r.output.trim()})`);
  return m[1]!;
}

interface Lease {
  index: number;
  name: string;
  /** The netns holding the address (absent in leases written before the pool existed). */
  netns?: string;
  /** The account whose instance holds the lease (absent for pool slots and old leases). */
  owner?: string;
  /** MAC of the instance's eth0 (pinned by the firewall). */
  mac?: string;
}

export interface Attachment {
  netnsPath: string;
  netnsName: string;
  /** Address without prefix. */
  ip: string;
  /** Resolves once the instance's tenant rules are in place (rejects: they could not be). */
  ready: Promise<void>;
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
  const { index, name, netns, owner, mac } = l as Record<string, unknown>;
  if (!Number.isInteger(index) || typeof name !== 'string') return undefined;
  const lease: Lease = { index: index as number, name };
  if (typeof netns === 'string' && /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(netns)) lease.netns = netns;
  if (typeof owner === 'string') lease.owner = owner;
  if (typeof mac === 'string' && MAC.test(mac)) lease.mac = mac;
  return lease;
}

/**
 * The leases a node's network state directory holds: the leases.json snapshot
 * with the changes of leases.log applied (a torn last line is ignored). Keys are
 * instance uuids or `pool:<netns>` slots; `netns` names the namespace.
 */
export function readLeases(stateDir: string): Map<string, { index: number; name: string; netns?: string; owner?: string; mac?: string }> {
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
  readonly hosts: TenantHosts;
  readonly poolSize: number;
  readonly maxPorts: number;
  /** The per-bridge nftables rules; undefined with `isolation: false`. */
  readonly firewall: TenantFirewall | undefined;
  /** Tenant marks of this process (rebuilt from the leases at each start; the rules are reinstalled with them). */
  private readonly tenantIds = new Map<string, number>();
  private nextTenant = 1;
  /** Runs nft and ip for the firewall (no spawn from this process per change). */
  private readonly shell = new CommandShell();
  /** The mark each port was given (what its removal must name). */
  private readonly portTenants = new Map<string, number>();
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
    this.maxPorts = options.maxPorts ?? BRIDGE_MAX_PORTS;
    if (!Number.isInteger(this.poolSize) || this.poolSize < 0) throw new RangeError('poolSize must be a non-negative integer');
    mkdirSync(options.stateDir, { recursive: true });
    this.hosts = new TenantHosts(join(options.stateDir, 'hosts.d'), this.gateway);
    this.firewall =
      options.isolation === false
        ? undefined
        : new TenantFirewall({ bridge: options.bridge, bridgeIp: this.gateway, ...(options.hostTcpPorts ? { hostTcpPorts: options.hostTcpPorts } : {}) }, this.shell);
    this.leasesPath = join(options.stateDir, 'leases.json');
    this.logPath = join(options.stateDir, 'leases.log');
    for (const [key, lease] of readLeases(options.stateDir)) this.leases.set(key, lease);
    this.compact();
    const owners = new Set<string>();
    for (const l of this.leases.values()) if (l.owner !== undefined) owners.add(l.owner);
    this.hosts.prune(owners);
    for (const o of owners) this.writeHosts(o);
  }

  /** The hosts file `owner`'s instances see as /etc/hosts. */
  hostsPathFor(owner: string): string {
    return this.hosts.pathFor(owner);
  }

  /** The mark of `owner` (a lease without an owner, from before accounts were kept, gets one of its own). */
  private tenantOf(owner: string | undefined): number {
    if (owner === undefined) return this.nextTenant++;
    let id = this.tenantIds.get(owner);
    if (id === undefined) {
      id = this.nextTenant++;
      this.tenantIds.set(owner, id);
    }
    return id;
  }

  private portOf(lease: Lease): FirewallPort | undefined {
    if (lease.netns === undefined || lease.mac === undefined) return undefined;
    return { ifname: hostVethName(lease.netns), mac: lease.mac, ip: addressInSubnet(this.options.subnet, lease.index).split('/')[0] as string };
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
    if (this.firewall) {
      // Instances that outlived the previous node process keep their rules: the tables are rebuilt whole from the leases.
      const ports: FirewallPort[] = [];
      for (const [key, lease] of this.leases) {
        if (key.startsWith(POOL_PREFIX)) continue;
        if (lease.mac === undefined) {
          const netns = lease.netns ?? netnsNameFor(key);
          const mac = await readMac(this.shell, netns).catch(() => undefined);
          if (mac === undefined) continue; // its netns is gone; the instance's recovery detaches it
          this.setLease(key, { ...lease, netns, mac });
        }
        const port = this.portOf(this.leases.get(key) as Lease);
        if (!port) continue;
        const tenant = this.tenantOf(lease.owner);
        this.portTenants.set(port.ifname, tenant);
        ports.push({ ...port, tenant });
      }
      await this.firewall.install(ports);
    }
    const stale = [...this.leases.keys()].filter((k) => k.startsWith(POOL_PREFIX));
    await Promise.all(stale.map((key) => this.dropSlot(key)));
    this.refill();
  }

  /** Removes a pool slot's netns, then its lease; a slot that cannot be removed keeps its lease (and address). */
  private async dropSlot(key: string): Promise<void> {
    try {
      const lease = this.leases.get(key);
      await removeInstanceNetwork(key.slice(POOL_PREFIX.length));
      const port = lease && this.portOf(lease);
      if (port) await this.firewall?.removePort(port);
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
    // Instances left running keep their rules (they are re-adopted); with none left, nothing of ours stays.
    if (this.leases.size === 0) await this.firewall?.uninstall();
    this.shell.close();
  }

  /** Removes the bridge and the firewall tables (tests, decommissioning). */
  async destroy(): Promise<void> {
    await this.firewall?.uninstall().catch(() => undefined);
    await removeBridge(this.options.bridge);
    this.shell.close();
  }

  /** Gives `uuid` an address and a netns on the bridge: a ready pool slot when there is one, else built now. */
  async attach(uuid: string, name: string, owner: string): Promise<Attachment> {
    const old = this.leases.get(uuid);
    if (old) {
      // A netns left by a run that died with a previous node process goes first.
      await this.detach(uuid);
    }
    const slot = this.pool.shift();
    let lease: Lease;
    let ready: Promise<void>;
    if (slot) {
      const pooled = this.leases.get(slot) as Lease;
      lease = { ...pooled, name, owner };
      // The instance's lease is recorded before the slot's is dropped: a crash in between leaves both, never neither.
      this.setLease(uuid, lease);
      this.setLease(slot, undefined);
      this.writeHosts(owner);
      ready = this.admit(lease);
      ready.catch(() => undefined); // the driver awaits it; never an unhandled rejection meanwhile
    } else {
      if (this.leases.size >= this.maxPorts) {
        throw new NodeError(Errno.ENOSPC, `this node's instance network is full: its bridge takes at most ${this.maxPorts} instances and ready namespaces`);
      }
      lease = { index: this.freeIndex(), name, netns: freshNetnsName(), owner };
      this.setLease(uuid, lease);
      this.writeHosts(owner);
      try {
        lease = await this.build(uuid, lease);
        await this.admit(lease);
      } catch (err) {
        await this.detach(uuid).catch(() => {
          this.setLease(uuid, undefined);
          this.writeHosts(owner);
        });
        throw err;
      }
      ready = Promise.resolve();
    }
    this.refill();
    const netnsName = lease.netns as string;
    return { netnsPath: `/run/netns/${netnsName}`, netnsName, ip: addressInSubnet(this.options.subnet, lease.index).split('/')[0] as string, ready };
  }

  /** Gives the lease's port its account's tenant mark. */
  private async admit(lease: Lease): Promise<void> {
    if (!this.firewall) return;
    const port = this.portOf(lease);
    if (!port) throw new Error(`netns ${lease.netns ?? '?'} has no pinned port`);
    const tenant = this.tenantOf(lease.owner);
    this.portTenants.set(port.ifname, tenant);
    await this.firewall.setTenant(port.ifname, tenant);
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
   * Recovery's sweep: removes the netns, tenant rules and lease of every instance not in `keep`
   * (the runs the node re-adopted). Their processes are gone (or killed by the runtime's own
   * sweep first), so an address freed here is held by nobody on the bridge when it is leased again.
   */
  async sweep(keep: ReadonlySet<string>): Promise<string[]> {
    const swept: string[] = [];
    const stale = [...this.leases.keys()].filter((key) => !key.startsWith(POOL_PREFIX) && !keep.has(key));
    await Promise.all(
      stale.map(async (key) => {
        try {
          await this.detach(key);
        } catch (err) {
          this.lastPoolError = err as Error;
          return; // the netns may still hold the address: the lease stays
        }
        if (!this.leases.has(key)) swept.push(key);
      }),
    );
    return swept;
  }

  private ipOf(lease: Lease): string {
    return addressInSubnet(this.options.subnet, lease.index).split('/')[0] as string;
  }

  /** Removes the instance's netns, its rules, and gives the address back (kept when the removal failed: the netns may still hold it). */
  async detach(uuid: string): Promise<void> {
    const lease = this.leases.get(uuid);
    await removeInstanceNetwork(lease?.netns ?? netnsNameFor(uuid));
    const port = lease && this.portOf(lease);
    if (port && this.firewall) {
      // The port is gone with its netns; these elements could grant nothing to another (names are never reused).
      const tenant = this.portTenants.get(port.ifname);
      this.portTenants.delete(port.ifname);
      await this.firewall.removePort({ ...port, ...(tenant !== undefined ? { tenant } : {}) }).catch(() => undefined);
    }
    if (lease && this.leases.get(uuid) === lease) {
      this.setLease(uuid, undefined);
      if (lease.owner !== undefined) this.writeHosts(lease.owner);
    }
  }

  private freeIndex(): number {
    const used = new Set([...this.leases.values()].map((l) => l.index));
    for (let index = 2; index <= this.size - 2; index++) if (!used.has(index)) return index;
    throw new Error('no free address in the instance subnet');
  }

  /**
   * Builds the lease's netns; with isolation, reads its eth0 MAC into the
   * lease (under `key`) and lists + pins the port before anything runs in it.
   */
  private async build(key: string, lease: Lease): Promise<Lease> {
    await createInstanceNetwork({
      name: lease.netns as string,
      bridge: this.options.bridge,
      address: addressInSubnet(this.options.subnet, lease.index),
      gateway: this.gateway,
    });
    if (!this.firewall) return lease;
    try {
      const pinned = { ...lease, mac: await readMac(this.shell, lease.netns as string) };
      if (this.leases.get(key) === lease) this.setLease(key, pinned);
      await this.firewall.addPorts([this.portOf(pinned) as FirewallPort]);
      return pinned;
    } catch (err) {
      await removeInstanceNetwork(lease.netns as string).catch(() => undefined);
      throw err;
    }
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
          for (let k = this.pool.length; k < this.poolSize && this.leases.size < this.maxPorts; k++) {
            const netns = freshNetnsName();
            const lease: Lease = { index: this.freeIndex(), name: '', netns };
            // The lease is recorded before the build so a crash mid-build leaves a slot init() can clean.
            this.setLease(POOL_PREFIX + netns, lease);
            round.push({ key: POOL_PREFIX + netns, lease });
          }
        } catch (err) {
          this.lastPoolError = err as Error;
        }
        const built = await Promise.allSettled(round.map(({ key, lease }) => this.build(key, lease)));
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

  /** Rewrites `owner`'s hosts file from its instances' leases. */
  private writeHosts(owner: string): void {
    const entries = [];
    for (const [key, l] of this.leases) {
      if (key.startsWith(POOL_PREFIX) || l.owner !== owner) continue;
      entries.push({ ip: addressInSubnet(this.options.subnet, l.index).split('/')[0] as string, name: l.name });
    }
    this.hosts.write(owner, entries);
  }
}
