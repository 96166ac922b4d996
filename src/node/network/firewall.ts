/**
 * The tenant boundary on the node bridge, in nftables: two tables per bridge
 * (`bridge ukc_<bridge>` and `inet ukc_<bridge>`) that the node installs,
 * keeps and removes. The ruleset is static; an instance only adds or removes
 * set elements keyed by its host-side veth name (unique per netns build, never
 * reused, so a stale element can never grant anything to a later port).
 *
 * What holds (ports = the host ends of this bridge's instance veths):
 *  - A frame entering from a port must carry the port's pinned MAC and IPv4
 *    address (IP and ARP, both the Ethernet and the ARP sender fields); any
 *    other frame (forged source, IPv6, VLAN, other ethertypes) is dropped. A
 *    port not pinned yet drops everything: fail closed.
 *  - Port to port (bridge forward, evaluated per output port, so ARP floods
 *    too): only when both ports hold the same tenant mark. A port without a
 *    tenant reaches nobody.
 *  - Port to host (inet input arriving on the bridge): only replies to
 *    connections the host opened (the gateway path) and the TCP ports listed in
 *    `hostTcpPorts` on the bridge address (none by default; the node offers no
 *    DNS: names come from the instance's /etc/hosts). A host service on
 *    0.0.0.0 is unreachable.
 *  - Nothing is routed to or from the bridge (inet forward), so the host's
 *    other networks stay out of reach even with ip_forward on.
 *  - The host reaches every instance (output is not filtered): the gateway and
 *    the node's probes.
 *
 * `meta ibrname` would be the natural "frames of this bridge" test, but the
 * kernels we run on lack nft_meta_bridge; the `ports` set names this bridge's
 * ports instead, which also keeps two nodes' (or two tests') bridges apart.
 *
 * Every change is one `nft -f -` transaction (all or nothing), run by the
 * network's long-lived command shell (shell.ts: no spawn from the node
 * process). Concurrent changes are merged into one nft run (a burst of starts
 * pays one, ~5-10 ms here, not one each); a merged run that fails is retried
 * change by change so each caller gets its own answer. `install` replaces both tables
 * atomically (idempotent across restarts); `uninstall` leaves nothing.
 */
import { existsSync } from 'node:fs';
import { parseIpv4 } from '../../sandbox/index.js';
import { CommandShell, nftScript } from './shell.js';

/** One instance port on the bridge: its host veth, and the MAC and address of the instance's eth0. */
export interface PinnedPort {
  ifname: string;
  mac: string;
  ip: string;
}

export interface FirewallOptions {
  bridge: string;
  /** The bridge's own address (the node, the gateway path). */
  bridgeIp: string;
  /** TCP ports of the node that instances may open connections to on the bridge address. */
  hostTcpPorts?: readonly number[];
  /** The nft binary (default: /usr/sbin/nft, else the PATH). */
  nftPath?: string;
}

const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

function nftBinary(): string {
  for (const p of ['/usr/sbin/nft', '/sbin/nft']) if (existsSync(p)) return p;
  return 'nft';
}

/** The table name for a bridge: `ukc_` and the bridge name with anything outside [A-Za-z0-9_] as `_`. */
export function firewallTableName(bridge: string): string {
  return `ukc_${bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;
}

function checkPort(p: PinnedPort): void {
  if (!IFNAME.test(p.ifname)) throw new TypeError(`invalid interface name: ${p.ifname}`);
  if (!MAC.test(p.mac)) throw new TypeError(`invalid MAC address: ${p.mac}`);
  parseIpv4(p.ip);
}

function checkTenant(tenant: number): void {
  if (!Number.isInteger(tenant) || tenant < 1 || tenant > 0xffffffff) throw new RangeError(`invalid tenant mark: ${tenant}`);
}

export interface FirewallPort extends PinnedPort {
  /** The tenant mark (≥ 1); absent while the port is a pool slot. */
  tenant?: number;
}

/** The whole ruleset for `options`, with `ports` already in it (pure; tests read it). */
export function firewallRuleset(options: FirewallOptions, ports: readonly FirewallPort[]): string {
  if (!IFNAME.test(options.bridge)) throw new TypeError(`invalid bridge name: ${options.bridge}`);
  parseIpv4(options.bridgeIp);
  const t = firewallTableName(options.bridge);
  const hostPorts = (options.hostTcpPorts ?? []).map((p) => {
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`invalid host port: ${p}`);
    return String(p);
  });
  for (const p of ports) {
    checkPort(p);
    if (p.tenant !== undefined) checkTenant(p.tenant);
  }
  const tenants = ports.filter((p): p is FirewallPort & { tenant: number } => p.tenant !== undefined);
  const elements = (items: string[]): string => (items.length > 0 ? ` elements = { ${items.join(', ')} }` : '');
  return [
    // Create-then-delete makes the first delete succeed on a fresh host; the whole file is one transaction.
    `table bridge ${t}`,
    `delete table bridge ${t}`,
    `table bridge ${t} {`,
    `  set ports { type ifname;${elements(ports.map((p) => `"${p.ifname}"`))} }`,
    `  set pins { type ifname . ether_addr . ipv4_addr;${elements(ports.map((p) => `"${p.ifname}" . ${p.mac} . ${p.ip}`))} }`,
    `  map tenant_of { type ifname : mark;${elements(tenants.map((p) => `"${p.ifname}" : ${p.tenant}`))} }`,
    `  set members { type ifname . mark;${elements(tenants.map((p) => `"${p.ifname}" . ${p.tenant}`))} }`,
    '  chain source_pinned {',
    '    type filter hook prerouting priority -200; policy accept;',
    '    iifname != @ports accept',
    '    iifname . ether saddr . ip saddr @pins accept',
    '    iifname . ether saddr . arp saddr ip @pins iifname . arp saddr ether . arp saddr ip @pins accept',
    '    drop',
    '  }',
    '  chain between_ports {',
    '    type filter hook forward priority 0; policy accept;',
    '    iifname != @ports accept',
    '    meta mark set iifname map @tenant_of oifname . meta mark @members accept',
    '    drop',
    '  }',
    '}',
    `table inet ${t}`,
    `delete table inet ${t}`,
    `table inet ${t} {`,
    '  chain to_host {',
    '    type filter hook input priority 0; policy accept;',
    `    iifname != "${options.bridge}" accept`,
    '    ct state established,related accept',
    ...(hostPorts.length > 0 ? [`    ip daddr ${options.bridgeIp} tcp dport { ${hostPorts.join(', ')} } accept`] : []),
    '    drop',
    '  }',
    '  chain not_routed {',
    '    type filter hook forward priority 0; policy accept;',
    // With br_netfilter loaded, bridged frames also pass here (in and out the bridge): the bridge table judged them.
    `    iifname "${options.bridge}" oifname "${options.bridge}" accept`,
    `    iifname "${options.bridge}" drop`,
    `    oifname "${options.bridge}" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export class NftError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NftError';
  }
}

interface Pending {
  script: string;
  resolve: () => void;
  reject: (err: Error) => void;
}

export class TenantFirewall {
  readonly table: string;
  private readonly nft: string;
  private queue: Pending[] = [];
  private running: Promise<void> | undefined;

  constructor(
    readonly options: FirewallOptions,
    private readonly shell: CommandShell = new CommandShell(),
  ) {
    this.table = firewallTableName(options.bridge);
    this.nft = options.nftPath ?? nftBinary();
  }

  /** Replaces both tables with the ruleset holding `ports` (atomic; idempotent). */
  install(ports: readonly FirewallPort[]): Promise<void> {
    return this.apply(firewallRuleset(this.options, ports));
  }

  /** Removes both tables (nothing of ours stays in the kernel). */
  uninstall(): Promise<void> {
    const t = this.table;
    return this.apply(`table bridge ${t}\ndelete table bridge ${t}\ntable inet ${t}\ndelete table inet ${t}\n`);
  }

  /** Puts ports on the bridge's list with their pins (a port without a tenant still reaches nobody). */
  addPorts(ports: readonly PinnedPort[]): Promise<void> {
    if (ports.length === 0) return Promise.resolve();
    ports.forEach(checkPort);
    const t = this.table;
    return this.apply(
      `add element bridge ${t} ports { ${ports.map((p) => `"${p.ifname}"`).join(', ')} }\n` +
        `add element bridge ${t} pins { ${ports.map((p) => `"${p.ifname}" . ${p.mac} . ${p.ip}`).join(', ')} }\n`,
    );
  }

  /** Gives a port its tenant: from now on it reaches (and is reached by) that tenant's ports. */
  setTenant(ifname: string, tenant: number): Promise<void> {
    if (!IFNAME.test(ifname)) throw new TypeError(`invalid interface name: ${ifname}`);
    checkTenant(tenant);
    const t = this.table;
    return this.apply(`add element bridge ${t} tenant_of { "${ifname}" : ${tenant} }\nadd element bridge ${t} members { "${ifname}" . ${tenant} }\n`);
  }

  /** Removes every element of a port (missing ones are fine: each delete follows an add of the same element). */
  removePort(port: FirewallPort): Promise<void> {
    checkPort(port);
    const t = this.table;
    const el = (set: string, v: string): string => `add element bridge ${t} ${set} { ${v} }\ndelete element bridge ${t} ${set} { ${v} }\n`;
    let script = el('ports', `"${port.ifname}"`) + el('pins', `"${port.ifname}" . ${port.mac} . ${port.ip}`);
    if (port.tenant !== undefined) {
      checkTenant(port.tenant);
      script += el('tenant_of', `"${port.ifname}" : ${port.tenant}`) + el('members', `"${port.ifname}" . ${port.tenant}`);
    }
    return this.apply(script);
  }

  /** Queues one transaction; transactions waiting together run in one nft process. */
  private apply(script: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ script, resolve, reject });
      this.running ??= this.drain();
    });
  }

  private async drain(): Promise<void> {
    try {
      // Never inside the caller's turn: a start hands its spec to the launcher first (a spawn blocks the loop for ms).
      await new Promise((r) => setImmediate(r));
      while (this.queue.length > 0) {
        const batch = this.queue.splice(0);
        try {
          await this.runNft(batch.map((b) => b.script).join(''));
          for (const b of batch) b.resolve();
        } catch (err) {
          if (batch.length === 1) {
            batch[0]!.reject(err as Error);
            continue;
          }
          // One bad change must not fail the others: retry each on its own.
          for (const b of batch) await this.runNft(b.script).then(b.resolve, b.reject);
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private async runNft(rules: string): Promise<void> {
    const r = await this.shell.run(nftScript(this.nft, rules));
    if (r.code !== 0) throw new NftError(`nft failed (${r.code}): ${r.output.trim().split('\n').slice(0, 6).join(' | ')}`);
  }
}
