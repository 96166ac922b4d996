/**
 * ADD <url>: downloads only from hosts the policy allows (security row 10).
 * By default any public address is allowed and loopback, private, link-local
 * and unspecified addresses are refused (the name is resolved first and the
 * connection made to the checked address); `allowHosts` narrows it to a list;
 * `allowPrivate` lifts the address check. Redirects are followed only after the
 * same check, a bounded number of times. No credentials are ever sent.
 */
import { lookup } from 'node:dns/promises';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { createWriteStream } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';

export interface UrlPolicy {
  allowHosts?: string[];
  allowPrivate?: boolean;
  maxBytes?: number;
  maxRedirects?: number;
  timeoutMs?: number;
}

export const DEFAULT_URL_MAX_BYTES = 2 * 1024 ** 3;

/** Addresses a build must not reach unless private addresses are allowed (RFC 6890 special-purpose ranges). */
const INTERNAL = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16],
  ['172.16.0.0', 12], ['192.0.0.0', 24], ['192.0.2.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15],
  ['198.51.100.0', 24], ['203.0.113.0', 24], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) INTERNAL.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['2001:db8::', 32], ['100::', 64], ['64:ff9b:1::', 48],
] as const) INTERNAL.addSubnet(net, prefix, 'ipv6');

/**
 * The IPv4 address an IPv6 address carries, for the forms that reach an IPv4
 * host: IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d) and NAT64
 * (64:ff9b::a.b.c.d). Node's URL parser writes them in hex (::ffff:7f00:1).
 */
function embeddedIPv4(ip6: string): string | undefined {
  // Normalise through the WHATWG URL parser: lowercase, compressed, hex tail.
  let host: string;
  try {
    host = new URL(`http://[${ip6}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const m = /^(?:::ffff:|::|64:ff9b::)([0-9a-f]{1,4}):([0-9a-f]{1,4})$/.exec(host);
  if (!m) return undefined;
  const hi = parseInt(m[1]!, 16);
  const lo = parseInt(m[2]!, 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 4) return INTERNAL.check(ip, 'ipv4');
  if (family !== 6) return true; // not an address at all: refuse
  const v4 = embeddedIPv4(ip);
  if (v4 !== undefined) return INTERNAL.check(v4, 'ipv4');
  return INTERNAL.check(ip, 'ipv6');
}

export class UrlRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UrlRefusedError';
  }
}

async function checkedAddress(url: URL, policy: UrlPolicy): Promise<string> {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UrlRefusedError(`ADD ${url.href}: only http and https URLs are fetched`);
  if (url.username || url.password) throw new UrlRefusedError(`ADD ${url.href}: credentials in URLs are refused`);
  if (policy.allowHosts && !policy.allowHosts.includes(host)) throw new UrlRefusedError(`ADD ${url.href}: host ${host} is not in the allowed list`);
  const address = isIP(host) ? host : (await lookup(host)).address;
  if (!policy.allowPrivate && isPrivateAddress(address)) {
    throw new UrlRefusedError(`ADD ${url.href}: ${host} resolves to the internal address ${address}; refused (allow private addresses in the build config to fetch it)`);
  }
  return address;
}

/** A lookup that answers only the address already checked (no second resolution, no rebinding). */
function pinnedLookup(address: string): LookupFunction {
  const family = isIP(address);
  return (_host, options, cb) => {
    // Node 20's autoSelectFamily asks for every address ({ all: true }).
    if (typeof options === 'object' && options !== null && options.all) cb(null, [{ address, family }]);
    else cb(null, address, family);
  };
}

export async function downloadUrl(href: string, dest: string, policy: UrlPolicy): Promise<void> {
  let url = new URL(href);
  const maxRedirects = policy.maxRedirects ?? 5;
  for (let hop = 0; hop <= maxRedirects; hop++) {
    const address = await checkedAddress(url, policy);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        { lookup: pinnedLookup(address), timeout: policy.timeoutMs ?? 60_000, headers: { 'user-agent': 'ukc-build' } },
        resolve,
      );
      req.on('timeout', () => req.destroy(new Error('timed out')));
      req.on('error', reject);
      req.end();
    });
    if (res.statusCode && res.statusCode >= 300 && res.statusCode < 400 && res.headers.location) {
      res.resume();
      url = new URL(res.headers.location, url);
      continue;
    }
    if (res.statusCode !== 200) {
      res.resume();
      throw new Error(`ADD ${href}: HTTP ${res.statusCode}`);
    }
    const max = policy.maxBytes ?? DEFAULT_URL_MAX_BYTES;
    let seen = 0;
    await pipeline(
      res,
      new Transform({
        transform(chunk: Buffer, _e, cb) {
          seen += chunk.length;
          if (seen > max) cb(new Error(`ADD ${href}: larger than ${max} bytes`));
          else cb(null, chunk);
        },
      }),
      createWriteStream(dest, { mode: 0o600 }),
    );
    return;
  }
  throw new Error(`ADD ${href}: more than ${maxRedirects} redirects`);
}
