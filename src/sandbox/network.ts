// Node networking for micro instances: one bridge (e.g. ukc0) with the gateway address, and per
// instance a named netns (`ip netns add`, so /run/netns/<name> can be handed to the launcher)
// with a veth pair: `eth0` inside with the instance's IP and a default route, the host end
// enslaved to the bridge.
//
// Instance namespaces are built and removed over rtnetlink by the native helper `ukc-netns`
// (src/sandbox/native/ukc-netns.c), one long-lived process per direction that takes requests
// on stdin: ~1 ms per netns instead of three `ip` processes (20–40 ms on a busy machine, and
// hundreds of ms each when 50 starts arrive at once). Removals that arrive together share the
// kernel's namespace teardown. The node still keeps a warm pool (src/node/network); a start
// that finds it empty now costs one request to the helper. Bridges and bare namespaces (rare)
// still use `ip`. Every function takes `inNetns` so tests (or a node that keeps instances off
// the host's own stack) can put the bridge inside a namespace of its own.
//
// Invariant: a helper answers requests in the order they were written, one line each, so the
// oldest pending request owns the next answer.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
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

/** Where the build puts the netns helper (scripts/build-native.sh). */
export const DEFAULT_NETNS_HELPER_PATH = fileURLToPath(new URL('../../native/ukc-netns', import.meta.url));
/** How long one request to the helper may take before the helper is ended and the request fails. */
export const DEFAULT_NETNS_REQUEST_TIMEOUT_MS = 30_000;

/** A failed netlink (or mount) operation of the helper: which netns, which operation, which errno. */
export class NetlinkError extends Error {
  constructor(
    readonly netns: string,
    readonly operation: string,
    readonly errno: number,
    readonly reason: string,
  ) {
    super(`netns ${netns}: ${operation} failed: errno ${errno} (${reason})`);
    this.name = 'NetlinkError';
  }
}

/** The helper's request line to build `spec` (validated; see ukc-netns.c for the protocol). */
export function netnsAddRequest(spec: InstanceNetworkSpec): string {
  checkName(NETNS_RE, 'netns name', spec.name);
  const bridge = spec.bridge ?? DEFAULT_BRIDGE;
  checkName(IFNAME_RE, 'bridge name', bridge);
  parseCidr(spec.address);
  parseIpv4(spec.gateway);
  if (spec.inNetns !== undefined) checkName(NETNS_RE, 'netns name', spec.inNetns);
  return `add ${spec.name} ${hostVethName(spec.name)} ${bridge} ${spec.address} ${spec.gateway} ${spec.inNetns ?? '-'}\n`;
}

/** The helper's request line to remove netns `name` (and its veth, whose host end is in `inNetns`). */
export function netnsDelRequest(name: string, inNetns?: string): string {
  checkName(NETNS_RE, 'netns name', name);
  if (inNetns !== undefined) checkName(NETNS_RE, 'netns name', inNetns);
  return `del ${name} ${hostVethName(name)} ${inNetns ?? '-'}\n`;
}

export type NetnsHelperReply = { ok: true; netns: string } | { ok: false; error: NetlinkError };

/** Parses one answer line of the helper strictly; anything else is a protocol error. */
export function parseNetnsReply(line: string): NetnsHelperReply {
  const ok = /^ok (\S+)$/.exec(line);
  if (ok) return { ok: true, netns: ok[1] as string };
  const err = /^error (\S+) (\d+) ([^:]+): (.*)$/.exec(line);
  if (err) return { ok: false, error: new NetlinkError(err[1] as string, err[3] as string, Number(err[2]), err[4] as string) };
  throw new Error(`ukc-netns: unexpected answer: ${JSON.stringify(line.slice(0, 200))}`);
}

export interface NetnsHelperOptions {
  /** The helper binary (default: the built one). */
  path?: string;
  requestTimeoutMs?: number;
}

interface PendingRequest {
  netns: string;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * One long-lived `ukc-netns` process, started on the first request and again after it ended.
 * It keeps the Node process alive only while requests are pending; EOF on its stdin (close(),
 * or this process ending) ends it.
 */
export class NetnsHelper {
  private child: ChildProcess | undefined;
  private readonly pending: PendingRequest[] = [];
  private partial = '';

  constructor(private readonly options: NetnsHelperOptions = {}) {}

  /** Builds the instance network (see ukc-netns.c `add`); rejects with NetlinkError naming the failed operation. */
  add(spec: InstanceNetworkSpec): Promise<void> {
    return this.request(spec.name, netnsAddRequest(spec));
  }

  /** Removes it; what is already gone is not an error. */
  remove(name: string, inNetns?: string): Promise<void> {
    return this.request(name, netnsDelRequest(name, inNetns));
  }

  /** Ends the helper (pending requests still get their answers first). */
  close(): void {
    this.child?.stdin?.end();
    this.child = undefined;
  }

  private request(netns: string, line: string): Promise<void> {
    const child = this.child ?? this.startHelper();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`ukc-netns: no answer for netns ${netns} within ${this.timeoutMs()} ms`));
        child.kill('SIGKILL'); // its state is unknown now; the next request starts a fresh one
      }, this.timeoutMs());
      this.pending.push({ netns, resolve, reject, timer });
      if (this.pending.length === 1) this.setRef(child, true);
      child.stdin?.write(line);
    });
  }

  private timeoutMs(): number {
    return this.options.requestTimeoutMs ?? DEFAULT_NETNS_REQUEST_TIMEOUT_MS;
  }

  private startHelper(): ChildProcess {
    const child = spawn(this.options.path ?? DEFAULT_NETNS_HELPER_PATH, [], { stdio: ['pipe', 'pipe', 'inherit'], env: {} });
    this.child = child;
    this.partial = '';
    child.stdin?.on('error', () => undefined); // a dead helper shows up as its exit
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.onOutput(chunk));
    const ended = (why: string): void => {
      if (this.child === child) this.child = undefined;
      for (const p of this.pending.splice(0)) {
        clearTimeout(p.timer);
        p.reject(new Error(`ukc-netns ended (${why}) before answering for netns ${p.netns}`));
      }
    };
    child.on('error', (err) => ended(err.message));
    child.on('exit', (code, signal) => ended(signal ?? `code ${String(code)}`));
    this.setRef(child, false);
    return child;
  }

  private onOutput(chunk: string): void {
    const lines = (this.partial + chunk).split('\n');
    this.partial = lines.pop() ?? '';
    for (const line of lines) {
      const p = this.pending.shift();
      if (!p) continue; // an answer nobody waits for (its request timed out)
      clearTimeout(p.timer);
      if (this.pending.length === 0 && this.child) this.setRef(this.child, false);
      try {
        const r = parseNetnsReply(line);
        if (r.ok) p.resolve();
        else p.reject(r.error);
      } catch (err) {
        p.reject(err as Error);
      }
    }
  }

  /** An idle helper must not keep the Node process alive. */
  private setRef(child: ChildProcess, ref: boolean): void {
    const handles = [child, child.stdin as unknown as Socket | null, child.stdout as unknown as Socket | null];
    for (const h of handles) {
      if (h && ref) h.ref();
      else if (h) h.unref();
    }
  }
}

/* Separate helpers for building and removing: a removal waits for the kernel's teardown and must
 * never hold up a start queued behind it. */
const builder = new NetnsHelper();
const remover = new NetnsHelper();

export async function createInstanceNetwork(spec: InstanceNetworkSpec): Promise<InstanceNetwork> {
  await builder.add(spec);
  return { name: spec.name, netnsPath: `${NETNS_DIR}/${spec.name}`, hostInterface: hostVethName(spec.name), address: spec.address };
}

/** Delete the netns and the veth pair (host end in `inNetns`); what is already gone is not an error. */
export async function removeInstanceNetwork(name: string, inNetns?: string): Promise<void> {
  await remover.remove(name, inNetns);
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
