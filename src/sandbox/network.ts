// Node networking for micro instances: one bridge (e.g. ukc0) with the gateway address, and per
// instance a named netns (`ip netns add`, so /run/netns/<name> can be handed to the launcher)
// with a veth pair: `eth0` inside with the instance's IP and a default route, the host end
// enslaved to the bridge.
//
// Cost: three `ip` processes per instance (netns add, one host-side batch, one netns-side
// batch), 20–40 ms on a busy machine — which is why the node builds them ahead of time in a warm
// pool (src/node/network) and only builds one during a start when that pool is empty. Every function takes `inNetns` so tests (or a node that
// keeps instances off the host's own stack) can put the bridge inside a namespace of its own.
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';

const run = promisify(execFile);

export const DEFAULT_BRIDGE = 'ukc0';
export const NETNS_DIR = '/run/netns';

const IFNAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
const NETNS_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

function checkName(re: RegExp, what: string, v: string): void {
  if (!re.test(v)) throw new TypeError(`invalid ${what}: ${v}`);
}

/** Run several `ip` commands in one process (`ip -batch -`). */
async function ipBatch(lines: string[], inNetns?: string): Promise<void> {
  const args = [...(inNetns ? ['-n', inNetns] : []), '-batch', '-'];
  await new Promise<void>((resolve, reject) => {
    const p = spawn('ip', args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.setEncoding('utf8');
    p.stderr.on('data', (d: string) => (err += d));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ip -batch failed (${code}): ${err.trim()}`))));
    p.stdin.end(lines.join('\n') + '\n');
  });
}

async function ip(args: string[], inNetns?: string): Promise<string> {
  const r = await run('ip', [...(inNetns ? ['-n', inNetns] : []), ...args]);
  return r.stdout;
}

/** Parse a dotted IPv4 address strictly (no leading zeros, each octet ≤ 255). */
export function parseIpv4(s: string): number {
  const parts = s.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255)) {
    throw new TypeError(`invalid IPv4 address: ${s}`);
  }
  return parts.reduce((a, o) => a * 256 + Number(o), 0);
}

/** Parse "a.b.c.d/len" strictly (prefix 8..30: room for a gateway and instances). */
export function parseCidr(cidr: string): { address: number; prefix: number } {
  const slash = cidr.indexOf('/');
  const prefixText = cidr.slice(slash + 1);
  if (slash < 0 || !/^\d{1,2}$/.test(prefixText)) throw new TypeError(`invalid IPv4 CIDR: ${cidr}`);
  const prefix = Number(prefixText);
  if (prefix > 30 || prefix < 8) throw new TypeError(`invalid IPv4 CIDR: ${cidr}`);
  return { address: parseIpv4(cidr.slice(0, slash)), prefix };
}

function formatIp(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** The index-th host address of a subnet ("10.88.0.0/16", 1 → "10.88.0.1/16"); skips network and broadcast. */
export function addressInSubnet(cidr: string, index: number): string {
  const { address, prefix } = parseCidr(cidr);
  const size = 2 ** (32 - prefix);
  const network = address - (address % size);
  if (!Number.isInteger(index) || index < 1 || index > size - 2) throw new RangeError(`index ${index} outside ${cidr}`);
  return `${formatIp(network + index)}/${prefix}`;
}

export interface BridgeSpec {
  name?: string;
  /** Gateway address with prefix, e.g. 10.88.0.1/16. */
  address: string;
  inNetns?: string;
}

/** Create the bridge if missing, give it the address, bring it up. Idempotent. */
export async function ensureBridge(spec: BridgeSpec): Promise<void> {
  const name = spec.name ?? DEFAULT_BRIDGE;
  checkName(IFNAME_RE, 'bridge name', name);
  parseCidr(spec.address);
  const exists = await ip(['-o', 'link', 'show', 'dev', name], spec.inNetns).then(
    () => true,
    () => false,
  );
  const lines: string[] = [];
  if (!exists) lines.push(`link add name ${name} type bridge`);
  const addrs = exists ? await ip(['-o', '-4', 'addr', 'show', 'dev', name], spec.inNetns) : '';
  if (!addrs.includes(` ${spec.address} `)) lines.push(`addr add ${spec.address} dev ${name}`);
  lines.push(`link set ${name} up`);
  await ipBatch(lines, spec.inNetns);
}

export async function removeBridge(name: string = DEFAULT_BRIDGE, inNetns?: string): Promise<void> {
  checkName(IFNAME_RE, 'bridge name', name);
  await ip(['link', 'del', 'dev', name], inNetns).catch(() => undefined);
}

export interface InstanceNetworkSpec {
  /** netns name (becomes /run/netns/<name>). */
  name: string;
  bridge?: string;
  /** Instance address with prefix, e.g. 10.88.0.5/16. */
  address: string;
  /** Default gateway (the bridge's address, without prefix). */
  gateway: string;
  /** Where the bridge lives (default: the caller's netns). */
  inNetns?: string;
}

export interface InstanceNetwork {
  name: string;
  netnsPath: string;
  hostInterface: string;
  address: string;
}

/** Host-side veth name: stable, ≤ 15 chars, derived from the netns name. */
export function hostVethName(netnsName: string): string {
  return 'uv' + createHash('sha256').update(netnsName).digest('hex').slice(0, 12);
}

export async function createInstanceNetwork(spec: InstanceNetworkSpec): Promise<InstanceNetwork> {
  checkName(NETNS_RE, 'netns name', spec.name);
  const bridge = spec.bridge ?? DEFAULT_BRIDGE;
  checkName(IFNAME_RE, 'bridge name', bridge);
  parseCidr(spec.address);
  parseIpv4(spec.gateway);
  const veth = hostVethName(spec.name);
  await ip(['netns', 'add', spec.name]);
  try {
    await ipBatch([`link add ${veth} type veth peer name eth0 netns ${spec.name}`, `link set ${veth} master ${bridge} up`], spec.inNetns);
    await ipBatch(
      [`link set lo up`, `addr add ${spec.address} dev eth0`, `link set eth0 up`, `route add default via ${spec.gateway}`],
      spec.name,
    );
  } catch (e) {
    await removeInstanceNetwork(spec.name, spec.inNetns);
    throw e;
  }
  return { name: spec.name, netnsPath: `${NETNS_DIR}/${spec.name}`, hostInterface: veth, address: spec.address };
}

/** Delete the netns (its eth0 goes with it, and so does the host end of the pair). */
export async function removeInstanceNetwork(name: string, inNetns?: string): Promise<void> {
  checkName(NETNS_RE, 'netns name', name);
  await ip(['link', 'del', 'dev', hostVethName(name)], inNetns).catch(() => undefined);
  await ip(['netns', 'del', name]).catch(() => undefined);
}

/** Create a bare named netns (e.g. the test's stand-in for a host). */
export async function createNetns(name: string): Promise<string> {
  checkName(NETNS_RE, 'netns name', name);
  await ip(['netns', 'add', name]);
  await ip(['link', 'set', 'lo', 'up'], name);
  return `${NETNS_DIR}/${name}`;
}

export async function removeNetns(name: string): Promise<void> {
  checkName(NETNS_RE, 'netns name', name);
  await ip(['netns', 'del', name]).catch(() => undefined);
}
