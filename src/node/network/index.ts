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
 * Invariants:
 *  - A lease maps an instance uuid to one host index in the subnet; leases are
 *    persisted (atomic write) so addresses survive a restart of the node and an
 *    adopted instance keeps its IP. One uuid holds at most one lease.
 *  - The hosts file is rewritten in place (same inode: truncate + write), because
 *    every instance sees it through a read-only bind mount of that inode.
 */
import { closeSync, existsSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { addressInSubnet, createInstanceNetwork, ensureBridge, parseCidr, removeBridge, removeInstanceNetwork } from '../../sandbox/index.js';

export interface NodeNetworkOptions {
  /** Bridge interface name (≤ 15 characters). */
  bridge: string;
  /** Instance subnet, e.g. 10.88.0.0/16; the bridge takes host index 1. */
  subnet: string;
  /** Where leases.json and hosts live. */
  stateDir: string;
}

export const DEFAULT_NODE_NETWORK = { bridge: 'ukcbr0', subnet: '10.88.0.0/16' } as const;

interface Lease {
  index: number;
  name: string;
}

export interface Attachment {
  netnsPath: string;
  netnsName: string;
  /** Address without prefix. */
  ip: string;
}

/** The netns name of an instance: stable per uuid, valid for `ip netns`. */
export function netnsNameFor(uuid: string): string {
  return `ukc-${uuid}`;
}

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export class NodeNetwork {
  readonly hostsPath: string;
  private readonly leasesPath: string;
  private readonly leases = new Map<string, Lease>();
  private readonly size: number;
  private readonly gateway: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(readonly options: NodeNetworkOptions) {
    const { prefix } = parseCidr(options.subnet);
    this.size = 2 ** (32 - prefix);
    this.gateway = addressInSubnet(options.subnet, 1).split('/')[0] as string;
    mkdirSync(options.stateDir, { recursive: true });
    this.hostsPath = join(options.stateDir, 'hosts');
    this.leasesPath = join(options.stateDir, 'leases.json');
    if (existsSync(this.leasesPath)) {
      const doc = JSON.parse(readFileSync(this.leasesPath, 'utf8')) as Record<string, Lease>;
      for (const [uuid, l] of Object.entries(doc)) if (Number.isInteger(l.index) && typeof l.name === 'string') this.leases.set(uuid, l);
    }
    this.writeHosts();
  }

  /** The node's own address on the bridge. */
  get gatewayIp(): string {
    return this.gateway;
  }

  async init(): Promise<void> {
    await ensureBridge({ name: this.options.bridge, address: addressInSubnet(this.options.subnet, 1) });
  }

  /** Removes the bridge (tests, decommissioning). */
  async destroy(): Promise<void> {
    await removeBridge(this.options.bridge);
  }

  /** Leases an address for `uuid` (or reuses its lease) and builds its netns on the bridge. */
  attach(uuid: string, name: string): Promise<Attachment> {
    return this.serial(async () => {
      let lease = this.leases.get(uuid);
      if (!lease) {
        const used = new Set([...this.leases.values()].map((l) => l.index));
        let index = 2;
        while (used.has(index) && index < this.size - 2) index++;
        if (used.has(index)) throw new Error('no free address in the instance subnet');
        lease = { index, name };
        this.leases.set(uuid, lease);
      } else lease.name = name;
      this.saveLeases();
      this.writeHosts();
      const cidr = addressInSubnet(this.options.subnet, lease.index);
      const netnsName = netnsNameFor(uuid);
      // A stale netns from a run that died with a previous node goes first.
      if (existsSync(`/run/netns/${netnsName}`)) await removeInstanceNetwork(netnsName);
      const net = await createInstanceNetwork({ name: netnsName, bridge: this.options.bridge, address: cidr, gateway: this.gateway });
      return { netnsPath: net.netnsPath, netnsName, ip: cidr.split('/')[0] as string };
    });
  }

  /** Removes the netns and gives the address back. */
  detach(uuid: string): Promise<void> {
    return this.serial(async () => {
      await removeInstanceNetwork(netnsNameFor(uuid));
      if (this.leases.delete(uuid)) {
        this.saveLeases();
        this.writeHosts();
      }
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.chain.then(fn, fn);
    this.chain = next.catch(() => undefined);
    return next;
  }

  private saveLeases(): void {
    const tmp = `${this.leasesPath}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, JSON.stringify(Object.fromEntries(this.leases)));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, this.leasesPath);
    fsyncDir(this.options.stateDir);
  }

  private writeHosts(): void {
    const lines = ['127.0.0.1\tlocalhost', `${this.gateway}\tnode.internal`];
    for (const l of this.leases.values()) {
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
