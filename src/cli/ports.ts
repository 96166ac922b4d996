/**
 * `-p PUBLIC:DEST[/handlers]` as the docs define it (§6): `443:8080` is short
 * for `443:8080/http+tls` plus `80:443/http+redirect`; `80:8080` is
 * `80:8080/http`; any other port defaults to `tls`. Handlers are checked
 * against the platform's rules by the node; here only the syntax.
 *
 * Note: the gateway work exports the platform's own parser from
 * src/node/services; once merged, `run` and `services create` should call it.
 */
import { UsageError } from '../util/command.js';

export type Handler = 'tls' | 'http' | 'redirect';

export interface ServiceSpec {
  port: number;
  destination_port: number;
  handlers: Handler[];
}

function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n < 1 || n > 65535) throw new UsageError(`${what} port "${text}" is not a port number`);
  return n;
}

export function parsePortSpec(text: string): ServiceSpec[] {
  const m = /^(\d+)(?::(\d+))?(?:\/([a-z+]+))?$/.exec(text);
  if (!m) throw new UsageError(`invalid -p "${text}": want PUBLIC[:DEST][/tls+http]`);
  const pub = port(m[1]!, 'public');
  const dest = m[2] === undefined ? pub : port(m[2], 'destination');
  if (m[3] !== undefined) {
    const handlers = m[3].split('+');
    for (const h of handlers) if (h !== 'tls' && h !== 'http' && h !== 'redirect') throw new UsageError(`invalid handler "${h}" in -p "${text}": use tls, http, redirect`);
    return [{ port: pub, destination_port: dest, handlers: [...new Set(handlers as Handler[])].sort() }];
  }
  if (pub === 443) return [{ port: 443, destination_port: dest, handlers: ['http', 'tls'] }, { port: 80, destination_port: 443, handlers: ['http', 'redirect'] }];
  if (pub === 80) return [{ port: 80, destination_port: dest, handlers: ['http'] }];
  return [{ port: pub, destination_port: dest, handlers: ['tls'] }];
}

/** Several -p flags, later ones replacing earlier ones on the same public port. */
export function parsePortSpecs(list: string[]): ServiceSpec[] {
  const byPort = new Map<number, ServiceSpec>();
  for (const text of list) for (const s of parsePortSpec(text)) byPort.set(s.port, s);
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}
