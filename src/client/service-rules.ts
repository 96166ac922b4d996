/**
 * The port and handler rules of service groups (reference §6), in one place:
 *
 *   port 80   must have `http` and not `tls`; `redirect` is allowed only here,
 *             and only towards 443 (`80:443/http+redirect`);
 *   port 443  must have `http` and `tls`;
 *   any other port must have `tls` and not `http` (TLS-terminated plain TCP).
 *
 * A consequence the gateway relies on: the handling of a public port is fixed
 * by its number alone (80 = plain HTTP, 443 = HTTPS, others = TLS + TCP), so
 * one listener per public port serves every service group using it.
 *
 * Also here: the CLI's `-p` shorthand, `443:8080` meaning
 * `443:8080/http+tls` plus `80:443/http+redirect`.
 */

export const HANDLERS = ['tls', 'http', 'redirect'] as const;
export type Handler = (typeof HANDLERS)[number];

export interface ServiceSpec {
  /** Public port on the gateway. */
  port: number;
  /** Port inside the instance; defaults to `port`. */
  destination_port?: number;
  handlers?: Handler[];
}

/** A service with defaults applied and handlers in canonical order. */
export interface NormalizedService {
  port: number;
  destination_port: number;
  handlers: Handler[];
}

export function normalizeService(s: ServiceSpec): NormalizedService {
  const set = new Set(s.handlers ?? []);
  return { port: s.port, destination_port: s.destination_port ?? s.port, handlers: HANDLERS.filter((h) => set.has(h)) };
}

const describe = (s: ServiceSpec): string => {
  const h = normalizeService(s).handlers;
  return `${s.port}:${s.destination_port ?? s.port}${h.length > 0 ? '/' + h.join('+') : ' (no handlers)'}`;
};

/** Returns the first violation of the §6 rules as a message a user can act on, or undefined. */
export function serviceRulesViolation(services: readonly ServiceSpec[]): string | undefined {
  if (services.length === 0) return 'a service group needs at least one service';
  const ports = new Set<number>();
  for (const s of services) {
    if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) return `port ${s.port} is not a TCP port (1-65535)`;
    const dest = s.destination_port ?? s.port;
    if (!Number.isInteger(dest) || dest < 1 || dest > 65535) return `destination_port ${dest} is not a TCP port (1-65535)`;
    if (ports.has(s.port)) return `port ${s.port} is listed twice; each public port takes one service`;
    ports.add(s.port);
    const raw = s.handlers ?? [];
    if (new Set(raw).size !== raw.length) return `service ${describe(s)}: a handler is listed twice`;
    const h = new Set(raw);
    if (h.has('redirect')) {
      if (s.port !== 80) return `service ${describe(s)}: redirect is only allowed on port 80 (to 443)`;
      if (dest !== 443) return `service ${describe(s)}: redirect must point to 443 (80:443/http+redirect)`;
      if (h.has('tls')) return `service ${describe(s)}: port 80 must have http and not tls`;
      if (!h.has('http')) return `service ${describe(s)}: redirect needs http (80:443/http+redirect)`;
      continue;
    }
    if (s.port === 80) {
      if (h.has('tls') || !h.has('http')) return `service ${describe(s)}: port 80 must have http and not tls (use 443 for TLS)`;
    } else if (s.port === 443) {
      if (!h.has('tls') || !h.has('http')) return `service ${describe(s)}: port 443 must have http and tls`;
    } else {
      if (h.has('http')) return `service ${describe(s)}: port ${s.port} must have tls and not http (http is only for ports 80 and 443; other ports carry TLS-terminated TCP)`;
      if (!h.has('tls')) return `service ${describe(s)}: port ${s.port} must have tls and not http (only port 80 may be plain)`;
    }
  }
  return undefined;
}

/** The public handling of a port, fixed by the rules above. */
export type PortMode = 'http' | 'https' | 'tls-tcp';
export function portMode(publicPort: number): PortMode {
  return publicPort === 80 ? 'http' : publicPort === 443 ? 'https' : 'tls-tcp';
}

export class PortSpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PortSpecError';
  }
}

const PORT_SPEC = /^(\d{1,5})(?::(\d{1,5}))?(?:\/([a-z+]+))?$/;

function parsePort(text: string, what: string, spec: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new PortSpecError(`${spec}: ${what} ${text} is not a TCP port (1-65535)`);
  return n;
}

/**
 * Parses one CLI `-p` value: `PUBLIC[:DEST][/HANDLER+HANDLER...]`.
 *  - `443:8080` (no handlers, port 443) → `443:8080/http+tls` and `80:443/http+redirect`;
 *  - `80:8080` (no handlers) → `80:8080/http`;
 *  - `N:M` for any other port (no handlers) → `N:M/tls`;
 *  - with handlers, exactly what is written.
 * The result is checked against the §6 rules (PortSpecError on violation).
 */
export function parsePortShorthand(spec: string): NormalizedService[] {
  const m = PORT_SPEC.exec(spec.trim());
  if (!m) throw new PortSpecError(`${spec}: expected PUBLIC[:DEST][/HANDLERS], e.g. 443:8080 or 8443:8080/tls`);
  const port = parsePort(m[1]!, 'port', spec);
  const destination = m[2] !== undefined ? parsePort(m[2], 'destination port', spec) : port;
  let out: ServiceSpec[];
  if (m[3] !== undefined) {
    const handlers: Handler[] = [];
    for (const h of m[3].split('+')) {
      if (!(HANDLERS as readonly string[]).includes(h)) throw new PortSpecError(`${spec}: unknown handler ${h} (tls, http, redirect)`);
      handlers.push(h as Handler);
    }
    out = [{ port, destination_port: destination, handlers }];
  } else if (port === 443) {
    out = [
      { port: 443, destination_port: destination, handlers: ['http', 'tls'] },
      { port: 80, destination_port: 443, handlers: ['http', 'redirect'] },
    ];
  } else if (port === 80) {
    out = [{ port: 80, destination_port: destination, handlers: ['http'] }];
  } else {
    out = [{ port, destination_port: destination, handlers: ['tls'] }];
  }
  const violation = serviceRulesViolation(out);
  if (violation !== undefined) throw new PortSpecError(`${spec}: ${violation}`);
  return out.map(normalizeService);
}

/** Several `-p` values: later ones may not repeat a public port (the 443 shorthand's own 80 yields to an explicit 80). */
export function parsePortShorthands(specs: readonly string[]): NormalizedService[] {
  const explicit = new Map<number, NormalizedService>();
  const implied = new Map<number, NormalizedService>();
  for (const spec of specs) {
    const parsed = parsePortShorthand(spec);
    const [first, ...rest] = parsed;
    if (explicit.has(first!.port)) throw new PortSpecError(`${spec}: port ${first!.port} is given twice`);
    explicit.set(first!.port, first!);
    for (const s of rest) implied.set(s.port, s);
  }
  for (const [port, s] of implied) if (!explicit.has(port)) explicit.set(port, s);
  const out = [...explicit.values()];
  const violation = serviceRulesViolation(out);
  if (violation !== undefined) throw new PortSpecError(violation);
  return out;
}
