/**
 * The node's gateway: one listener per public port, routing by Host (HTTP)
 * or SNI (TLS) to a service group, balancing over the group's running
 * instances, and waking standby instances (scale-to-zero).
 *
 * Public port handling is fixed by the §6 rules (see services/rules.ts):
 *   80      plain HTTP: `redirect` → 308 to https, else proxied per request;
 *   443     TLS terminated here (SNI picks the certificate), HTTP proxied per request;
 *   other   TLS terminated here, then the plain TCP stream is piped to one
 *           instance chosen per connection.
 *
 * INVARIANTS
 *  - Only `running` members receive traffic; a member leaves the rotation the
 *    moment it reports any other state (draining, stopping, standby, ...).
 *  - Load of a member = requests in flight + open TCP connections. A member at
 *    `hard_limit` gets nothing more; when every running member is there the
 *    request is refused at once (503), never queued.
 *  - At `soft_limit` on the least-loaded member, one standby member is woken.
 *  - No running member but a standby (or starting) one: the request is held,
 *    unread, until a member runs (bounded by `wakeTimeoutMs`), then served.
 *  - A request is retried on another member only when nothing of it can have
 *    reached the app: the connection was refused, or it failed before any
 *    response on a request without a body. The body is piped only once the
 *    upstream socket is connected, so a refused connection consumed nothing.
 *  - `drain(uuid)` resolves when the member has nothing in flight (or on timeout);
 *    the lifecycle stops an instance only after that.
 *
 * Errors answered by the gateway itself (plain text, `x-ukc-gateway-error` header):
 *   404 unknown host / no service on this port; 502 the instance failed the
 *   request and it could not be retried; 503 `no-instance` (none running and none
 *   to wake), `hard-limit` (every instance at hard_limit; `retry-after: 1`),
 *   `wake-failed`; 504 `wake-timeout`.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import net, { type AddressInfo, type Socket } from 'node:net';
import tls from 'node:tls';
import type { BackendEvent, GatewayBackend, GatewayGroup, GatewayMember, TlsProvider } from './backend.js';
import { endToEndHeaders, hostOf, requestHead, type ParsedHost, type RequestHead } from './headers.js';
import type { NormalizedService } from '../services/index.js';
import type { InstanceState, ScaleToZero } from '../instances/model.js';

export interface GatewayLimits {
  /** Extra attempts on other instances for a request that failed retryably. */
  maxRetries: number;
  /** How long a request waits for a standby instance to run. */
  wakeTimeoutMs: number;
  /** After an instance starts, connection refusals are retried (app still binding) for this long. */
  connectRetryWindowMs: number;
  /** Largest pause between those connection retries. */
  connectRetryMaxDelayMs: number;
  /** Per-instance concurrency cap when the group sets no hard_limit. */
  defaultHardLimit: number;
  /** Idle keep-alive connections kept per instance. */
  maxFreeSocketsPerInstance: number;
  /** Idle keep-alive connections to instances are closed after this long (below the apps' own timeouts). */
  upstreamIdleTimeoutMs: number;
  /** Client keep-alive idle timeout. */
  clientKeepAliveTimeoutMs: number;
  /** Longest time to receive a client's request headers. */
  headersTimeoutMs: number;
  /** Drain bound when the caller gives none. */
  defaultDrainTimeoutMs: number;
  /** Routing decisions cached per public port (by Host header value); the cache is emptied when full. */
  routeCacheSize: number;
}

export const DEFAULT_GATEWAY_LIMITS: GatewayLimits = {
  maxRetries: 2,
  wakeTimeoutMs: 30_000,
  connectRetryWindowMs: 10_000,
  connectRetryMaxDelayMs: 50,
  defaultHardLimit: 10_000,
  maxFreeSocketsPerInstance: 256,
  upstreamIdleTimeoutMs: 4_000,
  clientKeepAliveTimeoutMs: 5_000,
  headersTimeoutMs: 30_000,
  defaultDrainTimeoutMs: 10_000,
  routeCacheSize: 4096,
};

export interface ListenAddress {
  host: string;
  /** 0 picks a free port (tests); see `Gateway.address`. */
  port: number;
}

export interface GatewayOptions {
  backend: GatewayBackend;
  tls: TlsProvider;
  /** Where public port `p` is served. Default: all interfaces, port `p`. */
  listenAddress?: (publicPort: number) => ListenAddress;
  /** Public ports opened at start even before a group uses them (e.g. 80 and 443). */
  alwaysOpen?: readonly number[];
  limits?: Partial<GatewayLimits>;
  /** Diagnostics (listener failures, standby errors). */
  log?: (message: string) => void;
  /** Counts for metrics: each HTTP request answered (its status), each wake (its outcome). */
  observer?: GatewayObserver;
}

export interface GatewayObserver {
  request(status: number): void;
  wake(ok: boolean): void;
}

class Member {
  inflight = 0;
  conns = 0;
  idleSince = 0;
  idleTimer: NodeJS.Timeout | undefined;
  runningSince = 0;
  waking: Promise<void> | undefined;
  drainWaiters: (() => void)[] = [];
  constructor(
    readonly uuid: string,
    public group: string,
    public state: InstanceState,
    public address: string | null,
    public scaleToZero: ScaleToZero | null,
  ) {}
  get load(): number {
    return this.inflight + this.conns;
  }
  /** Load that keeps the instance awake: `idle` ignores open TCP connections. */
  get busy(): boolean {
    return this.inflight > 0 || (this.scaleToZero?.policy !== 'idle' && this.conns > 0);
  }
}

class Group {
  services = new Map<number, NormalizedService>();
  members = new Map<string, Member>();
  running: Member[] = [];
  cursor = 0;
  waiters = new Set<{ resolve(): void }>();
  constructor(public spec: GatewayGroup) {
    this.apply(spec);
  }
  apply(spec: GatewayGroup): void {
    this.spec = spec;
    this.services = new Map(spec.services.map((s) => [s.port, s]));
  }
  recompute(): void {
    this.running = [...this.members.values()].filter((m) => m.state === 'running' && m.address !== null);
  }
}

class GatewayFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

type RouteResult = { g: Group; svc: NormalizedService; host: ParsedHost } | GatewayFailure;

const BAD_HOST = new GatewayFailure(400, 'bad-host', 'more than one Host header');

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class Gateway {
  readonly limits: GatewayLimits;
  private readonly groups = new Map<string, Group>();
  private readonly byHost = new Map<string, Group>();
  private readonly members = new Map<string, Member>();
  private readonly listeners = new Map<number, { server: net.Server; ready: Promise<void> }>();
  private readonly agent: http.Agent;
  /** Per public port: Host header value → routing decision (cleared whenever the groups change). */
  private readonly routeCache = new Map<number, Map<string, RouteResult>>();
  private readonly sockets = new Set<Socket>();
  private unsubscribe: (() => void) | undefined;
  private closed = false;

  constructor(private readonly options: GatewayOptions) {
    this.limits = { ...DEFAULT_GATEWAY_LIMITS, ...options.limits };
    this.agent = new http.Agent({
      keepAlive: true,
      maxFreeSockets: this.limits.maxFreeSocketsPerInstance,
      timeout: this.limits.upstreamIdleTimeoutMs,
      scheduling: 'lifo',
    });
  }

  /** Reads groups and members, subscribes to changes and opens the listeners. */
  async start(): Promise<void> {
    this.unsubscribe = this.options.backend.subscribe((e) => this.onEvent(e));
    this.reloadGroups();
    for (const m of this.options.backend.members()) this.upsertMember(m);
    await this.syncListeners();
  }

  /**
   * Re-reads the groups and opens listeners for newly used public ports.
   * Rejects when a needed port cannot be opened (the caller undoes its change).
   */
  async refresh(): Promise<void> {
    this.reloadGroups();
    await this.syncListeners();
  }

  /** The bound address of public port `publicPort`, once listening. */
  address(publicPort: number): AddressInfo | undefined {
    const a = this.listeners.get(publicPort)?.server.address();
    return a !== null && typeof a === 'object' ? a : undefined;
  }

  /** Public ports currently listened on. */
  ports(): number[] {
    return [...this.listeners.keys()].sort((a, b) => a - b);
  }

  /** Per-member load, for metrics and tests. */
  load(uuid: string): { inflight: number; connections: number } | undefined {
    const m = this.members.get(uuid);
    return m ? { inflight: m.inflight, connections: m.conns } : undefined;
  }

  /**
   * Takes the member out of the rotation and resolves once nothing is in
   * flight on it (or after `timeoutMs`). Called by the lifecycle before it
   * stops an instance that belongs to a service group.
   */
  drain(uuid: string, timeoutMs = this.limits.defaultDrainTimeoutMs): Promise<void> {
    const m = this.members.get(uuid);
    if (!m) return Promise.resolve();
    if (m.state === 'running') {
      m.state = 'draining';
      this.groups.get(m.group)?.recompute();
    }
    if (m.load === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(done, Math.max(0, timeoutMs));
      function done(): void {
        clearTimeout(t);
        resolve();
      }
      m.drainWaiters.push(done);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe?.();
    for (const m of this.members.values()) clearTimeout(m.idleTimer);
    for (const g of this.groups.values()) for (const w of g.waiters) w.resolve();
    const closing = [...this.listeners.values()].map(
      (l) => new Promise<void>((r) => l.server.close(() => r())),
    );
    for (const s of this.sockets) s.destroy();
    this.listeners.clear();
    this.agent.destroy();
    await Promise.all(closing);
  }

  // ---- model -------------------------------------------------------------

  private onEvent(e: BackendEvent): void {
    if (this.closed) return;
    if (e.type === 'groups') void this.refresh().catch((err: unknown) => this.log(`gateway: ${String(err)}`));
    else if (e.type === 'member') this.upsertMember(e.member);
    else this.removeMember(e.uuid);
  }

  private reloadGroups(): void {
    const specs = this.options.backend.groups();
    const seen = new Set<string>();
    for (const spec of specs) {
      seen.add(spec.uuid);
      const g = this.groups.get(spec.uuid);
      if (g) g.apply(spec);
      else this.groups.set(spec.uuid, new Group(spec));
    }
    for (const [uuid, g] of this.groups) {
      if (seen.has(uuid)) continue;
      for (const w of g.waiters) w.resolve();
      this.groups.delete(uuid);
    }
    this.byHost.clear();
    this.routeCache.clear();
    for (const g of this.groups.values()) for (const h of g.spec.hostnames) this.byHost.set(h.toLowerCase(), g);
    // Members may have arrived before their group.
    for (const m of this.members.values()) this.attach(m);
  }

  private attach(m: Member): void {
    for (const g of this.groups.values()) if (g.spec.uuid !== m.group) g.members.delete(m.uuid);
    const g = this.groups.get(m.group);
    if (!g) return;
    g.members.set(m.uuid, m);
  }

  private upsertMember(spec: GatewayMember): void {
    let m = this.members.get(spec.uuid);
    const before = m?.state;
    const oldGroup = m?.group;
    if (!m) {
      m = new Member(spec.uuid, spec.group, spec.state, spec.address, spec.scaleToZero);
      this.members.set(spec.uuid, m);
    } else {
      m.group = spec.group;
      m.state = spec.state;
      m.address = spec.address;
      m.scaleToZero = spec.scaleToZero;
    }
    if (oldGroup !== undefined && oldGroup !== spec.group) this.groups.get(oldGroup)?.members.delete(m.uuid);
    this.attach(m);
    const g = this.groups.get(m.group);
    g?.recompute();
    if (m.state === 'running' && before !== 'running') {
      // Only a start seen here may still be binding its port (see connect retries).
      if (before !== undefined) m.runningSince = performance.now();
      this.markIdleIfUnused(m);
      if (g) for (const w of [...g.waiters]) w.resolve();
    }
    if (m.state !== 'running') {
      clearTimeout(m.idleTimer);
      m.idleTimer = undefined;
    }
    if ((m.state === 'standby' || m.state === 'stopped') && g && g.waiters.size > 0) this.wakeOne(g);
  }

  private removeMember(uuid: string): void {
    const m = this.members.get(uuid);
    if (!m) return;
    clearTimeout(m.idleTimer);
    this.members.delete(uuid);
    const g = this.groups.get(m.group);
    g?.members.delete(uuid);
    g?.recompute();
    for (const w of m.drainWaiters.splice(0)) w();
  }

  // ---- balancing ---------------------------------------------------------

  /** Least-loaded running member (round-robin among equals), skipping `tried`; 'full' when all are at hard_limit. */
  private pick(g: Group, tried: ReadonlySet<Member> | undefined): Member | 'full' | undefined {
    const running = g.running;
    const n = running.length;
    if (n === 0) return undefined;
    const hard = g.spec.hardLimit ?? this.limits.defaultHardLimit;
    const start = g.cursor++ % n;
    if (g.cursor > 1e9) g.cursor = 0;
    let best: Member | undefined;
    let candidates = 0;
    for (let i = 0; i < n; i++) {
      const m = running[(start + i) % n]!;
      if (tried?.has(m)) continue;
      candidates++;
      if (m.load >= hard) continue;
      if (best === undefined || m.load < best.load) best = m;
    }
    if (best === undefined) return candidates === 0 ? undefined : 'full';
    const soft = g.spec.softLimit;
    if (soft !== null && best.load >= soft) this.wakeOne(g);
    return best;
  }

  /** Wakes one standby member of `g` unless one is already starting. */
  private wakeOne(g: Group): void {
    let standby: Member | undefined;
    for (const m of g.members.values()) {
      if (m.state === 'starting' || m.waking) return;
      if (m.state === 'standby' && standby === undefined) standby = m;
    }
    if (standby) void this.wake(standby).catch(() => undefined);
  }

  private wake(m: Member): Promise<void> {
    if (!m.waking) {
      m.waking = this.options.backend.wake(m.uuid).finally(() => {
        m.waking = undefined;
      });
      const observer = this.options.observer;
      if (observer) m.waking.then(() => observer.wake(true), () => observer.wake(false));
      m.waking.catch((err: unknown) => {
        this.log(`gateway: waking ${m.uuid} failed: ${err instanceof Error ? err.message : String(err)}`);
        const g = this.groups.get(m.group);
        if (g) for (const w of [...g.waiters]) w.resolve();
      });
    }
    return m.waking;
  }

  /** A member to send to, waking and waiting for one when none runs. */
  private async acquire(g: Group, tried?: ReadonlySet<Member>): Promise<Member> {
    const deadline = performance.now() + this.limits.wakeTimeoutMs;
    for (let round = 0; round < 64; round++) {
      const m = this.pick(g, tried);
      if (m === 'full') throw new GatewayFailure(503, 'hard-limit', 'every instance of this service is at its hard_limit');
      if (m) return m;
      const members = [...g.members.values()];
      const wakeable = members.some((x) => x.state === 'standby' || x.state === 'starting' || x.waking !== undefined);
      // Draining/stopping members on their way to standby come back through the waiter.
      const transient = members.some((x) => x.scaleToZero !== null && (x.state === 'draining' || x.state === 'stopping'));
      if (!wakeable && !transient) throw new GatewayFailure(503, 'no-instance', 'no instance of this service is running');
      this.wakeOne(g);
      const left = deadline - performance.now();
      if (left <= 0 || this.closed) throw new GatewayFailure(504, 'wake-timeout', 'the instance did not start in time');
      await new Promise<void>((resolve) => {
        const w = {
          resolve: () => {
            clearTimeout(t);
            g.waiters.delete(w);
            resolve();
          },
        };
        const t = setTimeout(w.resolve, left);
        g.waiters.add(w);
      });
    }
    throw new GatewayFailure(503, 'wake-failed', 'no instance could be started');
  }

  /**
   * A refused connection to a member that started moments ago and is the only
   * candidate left: the app is most likely still binding its port, so the same
   * member is tried again (within `connectRetryWindowMs`) rather than failing.
   */
  private stillBinding(g: Group, m: Member, tried: ReadonlySet<Member>): boolean {
    if (m.state !== 'running' || m.runningSince === 0) return false;
    if (performance.now() - m.runningSince >= this.limits.connectRetryWindowMs) return false;
    return !g.running.some((x) => x !== m && !tried.has(x));
  }

  private take(m: Member, kind: 'request' | 'connection'): () => void {
    if (kind === 'request') m.inflight++;
    else m.conns++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      if (kind === 'request') m.inflight--;
      else m.conns--;
      if (m.load === 0 && m.drainWaiters.length > 0) for (const w of m.drainWaiters.splice(0)) w();
      if (!m.busy) this.markIdleIfUnused(m);
    };
  }

  // ---- scale-to-zero -----------------------------------------------------

  private markIdleIfUnused(m: Member): void {
    const stz = m.scaleToZero;
    if (stz === null || stz.policy === 'off' || m.state !== 'running' || m.busy) return;
    m.idleSince = performance.now();
    if (m.idleTimer === undefined) this.armIdle(m, stz.cooldown_time_ms);
  }

  private armIdle(m: Member, ms: number): void {
    m.idleTimer = setTimeout(() => {
      m.idleTimer = undefined;
      const stz = m.scaleToZero;
      if (this.closed || stz === null || stz.policy === 'off' || m.state !== 'running' || m.busy) return;
      const idleFor = performance.now() - m.idleSince;
      if (idleFor + 1 < stz.cooldown_time_ms) {
        this.armIdle(m, stz.cooldown_time_ms - idleFor);
        return;
      }
      this.options.backend.standby(m.uuid).catch((err: unknown) => {
        this.log(`gateway: standby of ${m.uuid} failed: ${err instanceof Error ? err.message : String(err)}`);
      });
    }, Math.max(0, ms));
    m.idleTimer.unref();
  }

  // ---- listeners ---------------------------------------------------------

  private neededPorts(): Set<number> {
    const ports = new Set<number>(this.options.alwaysOpen ?? []);
    for (const g of this.groups.values()) for (const s of g.spec.services) ports.add(s.port);
    return ports;
  }

  private async syncListeners(): Promise<void> {
    if (this.closed) return;
    const needed = this.neededPorts();
    for (const [port, l] of this.listeners) {
      if (!needed.has(port)) {
        this.listeners.delete(port);
        l.server.close();
      }
    }
    const failures: string[] = [];
    await Promise.all(
      [...needed].map(async (port) => {
        let l = this.listeners.get(port);
        if (!l) {
          l = this.open(port);
          this.listeners.set(port, l);
        }
        try {
          await l.ready;
        } catch (err) {
          if (this.listeners.get(port) === l) this.listeners.delete(port);
          const where = this.listenAddress(port);
          failures.push(`public port ${port} (${where.host}:${where.port}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
      }),
    );
    if (failures.length > 0) throw new GatewayListenError(`cannot open ${failures.join('; ')}`);
  }

  private listenAddress(port: number): ListenAddress {
    return this.options.listenAddress?.(port) ?? { host: '0.0.0.0', port };
  }

  private open(port: number): { server: net.Server; ready: Promise<void> } {
    let server: net.Server;
    if (port === 80) {
      server = http.createServer((req, res) => this.onHttp(port, false, req, res));
    } else if (port === 443) {
      server = https.createServer(
        { ...this.options.tls.defaultCredentials(), SNICallback: (name, cb) => cb(null, this.options.tls.contextFor(name)) },
        (req, res) => this.onHttp(port, true, req, res),
      );
    } else {
      server = tls.createServer(
        { ...this.options.tls.defaultCredentials(), SNICallback: (name, cb) => cb(null, this.options.tls.contextFor(name)) },
        (socket) => this.onTlsStream(port, socket),
      );
    }
    if (server instanceof http.Server) {
      server.keepAliveTimeout = this.limits.clientKeepAliveTimeoutMs;
      server.headersTimeout = this.limits.headersTimeoutMs;
      server.requestTimeout = 0; // long uploads and streams are the app's business
      server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.onUpgrade(port, req, socket, head));
    }
    server.on('connection', (s: Socket) => {
      s.setNoDelay(true);
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    server.on('tlsClientError', (_err: Error, s: Socket) => s.destroy());
    const where = this.listenAddress(port);
    const ready = new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(where.port, where.host, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log(`gateway: port ${port}: ${err.message}`));
        resolve();
      });
    });
    return { server, ready };
  }

  // ---- HTTP --------------------------------------------------------------

  private route(port: number, hostname: string | undefined): { g: Group; svc: NormalizedService } | GatewayFailure {
    const g = hostname !== undefined ? this.byHost.get(hostname) : undefined;
    if (!g) return new GatewayFailure(404, 'unknown-host', `no service group serves ${hostname ?? '(no host)'}`);
    const svc = g.services.get(port);
    if (!svc) return new GatewayFailure(404, 'no-service', `${hostname} has no service on port ${port}`);
    return { g, svc };
  }

  private fail(res: ServerResponse, f: GatewayFailure): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'text/plain; charset=utf-8', 'x-ukc-gateway-error': f.code };
    if (f.code === 'hard-limit') headers['retry-after'] = '1';
    res.writeHead(f.status, headers);
    res.end(`${f.message}\n`);
  }

  /** Routing of a Host header value on a public port, cached until the groups change. */
  private routeHost(port: number, header: string | undefined): RouteResult {
    let cache = this.routeCache.get(port);
    if (cache === undefined) this.routeCache.set(port, (cache = new Map()));
    const key = header ?? '';
    let r = cache.get(key);
    if (r === undefined) {
      const host = hostOf(header);
      const found = this.route(port, host?.name);
      r = found instanceof GatewayFailure ? found : { ...found, host: host! };
      if (cache.size >= this.limits.routeCacheSize) cache.clear();
      cache.set(key, r);
    }
    return r;
  }

  private onHttp(port: number, secure: boolean, req: IncomingMessage, res: ServerResponse): void {
    const observer = this.options.observer;
    if (observer) res.once('close', () => observer.request(res.statusCode));
    const head = requestHead(req.rawHeaders, req.socket.remoteAddress ?? '', secure);
    const found = head.hostRepeated ? BAD_HOST : this.routeHost(port, head.host);
    if (found instanceof GatewayFailure) {
      req.resume();
      this.fail(res, found);
      return;
    }
    const { g, svc, host } = found;
    if (svc.handlers.includes('redirect')) {
      req.resume();
      const httpsPort = this.address(443)?.port ?? this.listenAddress(443).port;
      const portPart = host.port !== undefined && httpsPort !== 443 && httpsPort !== 0 ? `:${httpsPort}` : '';
      res.writeHead(308, { location: `https://${host.name}${portPart}${req.url ?? '/'}`, 'content-length': '0' });
      res.end();
      return;
    }
    this.forward(g, svc, req, res, head);
  }

  private forward(g: Group, svc: NormalizedService, req: IncomingMessage, res: ServerResponse, head: RequestHead): void {
    let tried: Set<Member> | undefined;
    let release: (() => void) | undefined;
    let current: http.ClientRequest | undefined;
    let done = false;
    res.once('close', () => {
      done = true;
      release?.();
      if (!res.writableFinished) current?.destroy();
    });
    const attempt = (retriesLeft: number): void => {
      // The common case (a running member with room) is decided synchronously: no promise per request.
      const picked = tried === undefined ? this.pick(g, undefined) : undefined;
      if (picked instanceof Member) dispatch(picked, retriesLeft);
      else
        this.acquire(g, tried).then(
          (m) => dispatch(m, retriesLeft),
          (err: unknown) => {
            req.resume();
            this.fail(res, err instanceof GatewayFailure ? err : new GatewayFailure(503, 'wake-failed', 'no instance could be started'));
          },
        );
    };
    const dispatch = (m: Member, retriesLeft: number): void => {
      if (done) return;
      release?.();
      release = this.take(m, 'request');
      current = this.send(m, svc, req, res, head, (err, replayable) => {
        release?.();
        release = undefined;
        if (done) return;
        const seen = (tried ??= new Set());
        const refused = (err as NodeJS.ErrnoException).code === 'ECONNREFUSED';
        if (refused && this.stillBinding(g, m, seen)) {
          // The app is up but still binding its port: try the same member again shortly.
          const since = performance.now() - m.runningSince;
          void sleep(Math.min(this.limits.connectRetryMaxDelayMs, 1 + since / 50)).then(() => attempt(retriesLeft));
          return;
        }
        if (replayable && retriesLeft > 0) {
          seen.add(m);
          attempt(retriesLeft - 1);
          return;
        }
        req.resume();
        this.fail(res, new GatewayFailure(502, 'upstream', 'the instance failed to answer'));
      });
    };
    attempt(this.limits.maxRetries);
  }

  /** One upstream exchange; `onError(err, replayable)` when it fails before a response started. */
  private send(
    m: Member,
    svc: NormalizedService,
    req: IncomingMessage,
    res: ServerResponse,
    head: RequestHead,
    onError: (err: Error, replayable: boolean) => void,
  ): http.ClientRequest {
    let responded = false;
    const up = http.request({
      host: m.address!,
      port: svc.destination_port,
      method: req.method,
      path: req.url,
      headers: head.headers,
      agent: this.agent,
      setHost: false,
    });
    if (!head.body) up.end();
    else {
      // The body is piped only once connected: a refused connection consumed none of it (retryable).
      up.once('socket', (s: Socket) => {
        if (s.connecting) s.once('connect', () => req.pipe(up));
        else req.pipe(up);
      });
    }
    up.once('response', (ur: IncomingMessage) => {
      responded = true;
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, endToEndHeaders(ur.rawHeaders));
      // A hand-rolled pipe: fewer listeners per response than stream.pipe, same backpressure.
      ur.on('data', (chunk: Buffer) => {
        if (!res.write(chunk)) ur.pause();
      });
      res.on('drain', () => ur.resume());
      ur.once('end', () => res.end());
      ur.once('error', () => res.destroy());
    });
    let failed = false;
    up.on('error', (err: NodeJS.ErrnoException) => {
      if (failed) return;
      failed = true;
      if (responded) {
        res.destroy();
        return;
      }
      const refused = err.code === 'ECONNREFUSED';
      onError(err, refused || (!head.body && !res.headersSent));
    });
    return up;
  }

  private onUpgrade(port: number, req: IncomingMessage, client: Socket, head: Buffer): void {
    const found = this.routeHost(port, req.headers.host);
    if (found instanceof GatewayFailure || found.svc.handlers.includes('redirect')) {
      client.end('HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const { g, svc } = found;
    void this.acquire(g).then(
      (m) => {
        const release = this.take(m, 'connection');
        const up = net.connect(svc.destination_port, m.address!);
        up.setNoDelay(true);
        up.once('connect', () => {
          let head0 = `${req.method ?? 'GET'} ${req.url ?? '/'} HTTP/1.1\r\n`;
          for (let i = 0; i < req.rawHeaders.length; i += 2) head0 += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
          up.write(head0 + '\r\n');
          if (head.length > 0) up.write(head);
          client.pipe(up).pipe(client);
        });
        const end = (): void => {
          release();
          client.destroy();
          up.destroy();
        };
        up.on('error', end);
        up.once('close', end);
        client.on('error', end);
        client.once('close', end);
      },
      () => client.destroy(),
    );
  }

  // ---- TLS + TCP ---------------------------------------------------------

  private onTlsStream(port: number, client: tls.TLSSocket): void {
    const name = typeof client.servername === 'string' ? client.servername.toLowerCase() : undefined;
    const found = this.route(port, name);
    if (found instanceof GatewayFailure) {
      client.destroy();
      return;
    }
    client.pause();
    const { g, svc } = found;
    const tried = new Set<Member>();
    let closed = false;
    client.once('close', () => (closed = true));
    client.on('error', () => client.destroy());
    const attempt = async (retriesLeft: number): Promise<void> => {
      let m: Member;
      try {
        m = await this.acquire(g, tried);
      } catch {
        client.destroy();
        return;
      }
      if (closed) return;
      const release = this.take(m, 'connection');
      const up = net.connect(svc.destination_port, m.address!);
      up.setNoDelay(true);
      let connected = false;
      up.once('connect', () => {
        connected = true;
        client.pipe(up).pipe(client);
        client.resume();
      });
      let failed = false;
      up.on('error', (err: NodeJS.ErrnoException) => {
        if (failed) return;
        failed = true;
        release();
        up.destroy();
        if (connected || closed) {
          client.destroy();
          return;
        }
        if (err.code === 'ECONNREFUSED' && this.stillBinding(g, m, tried)) {
          void sleep(this.limits.connectRetryMaxDelayMs / 5).then(() => attempt(retriesLeft));
          return;
        }
        if (retriesLeft > 0) {
          tried.add(m);
          void attempt(retriesLeft - 1);
        } else client.destroy();
      });
      up.once('close', () => {
        release();
        if (connected) client.destroy();
      });
      client.once('close', () => up.destroy());
    };
    void attempt(this.limits.maxRetries);
  }

  private log(message: string): void {
    this.options.log?.(message);
  }
}

export class GatewayListenError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayListenError';
  }
}
