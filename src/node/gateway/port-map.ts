/**
 * `ukcd node --port-map 443=127.0.0.1:8443,80=127.0.0.1:8080`: serves public
 * ports on other host addresses (for machines where 80/443 are taken or need
 * privileges). Ports without an entry are served on `defaultHost:<port>`.
 */
import { isIP } from 'node:net';
import type { ListenAddress } from './gateway.js';

export class PortMapError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortMapError';
  }
}

const ENTRY = /^(\d{1,5})=(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)|([a-z0-9.-]+)):(\d{1,5})$/;

function port(text: string, what: string, entry: string, allowZero: boolean): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < (allowZero ? 0 : 1) || n > 65535) throw new PortMapError(`${entry}: ${what} ${text} is not a port`);
  return n;
}

/** Parses the flag's value into a lookup `publicPort → listen address`. */
export function parsePortMap(value: string, defaultHost = '0.0.0.0'): (publicPort: number) => ListenAddress {
  const map = new Map<number, ListenAddress>();
  for (const raw of value.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const m = ENTRY.exec(entry);
    if (!m) throw new PortMapError(`${entry}: expected PUBLIC=HOST:PORT, e.g. 443=127.0.0.1:8443`);
    const publicPort = port(m[1]!, 'public port', entry, false);
    const host = m[2] ?? m[3] ?? m[4]!;
    if ((m[2] !== undefined && isIP(host) !== 6) || (m[3] !== undefined && isIP(host) !== 4 && !/[a-z]/.test(host)))
      throw new PortMapError(`${entry}: ${host} is not an IP address`);
    if (map.has(publicPort)) throw new PortMapError(`${entry}: public port ${publicPort} is mapped twice`);
    map.set(publicPort, { host, port: port(m[5]!, 'host port', entry, true) });
  }
  return (publicPort) => map.get(publicPort) ?? { host: defaultHost, port: publicPort };
}
