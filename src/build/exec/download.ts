/**
 * ADD <url>: downloads only from hosts the policy allows (security row 10).
 * By default any public address is allowed and loopback, private, link-local
 * and unspecified addresses are refused (the name is resolved first and the
 * connection made to the checked address); `allowHosts` narrows it to a list;
 * `allowPrivate` lifts the address check. Redirects are followed only after the
 * same check, a bounded number of times. No credentials are ever sent.
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
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

export function isPrivateAddress(ip: string): boolean {
  if (isIP(ip) === 4) {
    const [a = 0, b = 0] = ip.split('.').map(Number);
    return a === 10 || a === 127 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  const low = ip.toLowerCase();
  if (low.startsWith('::ffff:')) return isPrivateAddress(low.slice(7));
  return low === '::' || low === '::1' || low.startsWith('fc') || low.startsWith('fd') || low.startsWith('fe80');
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

export async function downloadUrl(href: string, dest: string, policy: UrlPolicy): Promise<void> {
  let url = new URL(href);
  const maxRedirects = policy.maxRedirects ?? 5;
  for (let hop = 0; hop <= maxRedirects; hop++) {
    const address = await checkedAddress(url, policy);
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(
        url,
        { lookup: (_h, _o, cb) => cb(null, address, isIP(address)), timeout: policy.timeoutMs ?? 60_000, headers: { 'user-agent': 'ukc-build' } },
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
