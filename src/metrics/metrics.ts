/**
 * Prometheus metrics of a `ukcd` role (prom-client, text format on GET /metrics).
 *
 * One prom-client Registry per role, never the library's global default one:
 * `ukcd dev` runs the control plane and a node in one process, and each /metrics
 * shows its own role's series (plus the process's default metrics, which the
 * two then share in value, each under its own `role` label). Tests start many
 * roles in one process; separate registries keep their counts apart.
 *
 * Label values are bounded: HTTP series are keyed by route template (see
 * src/log/http.ts), method and status; never a raw path, id or account.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { FinishedRequest } from '../log/index.js';

/** Methods kept as labels; anything else is `other` (clients choose methods freely). */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

export class RoleMetrics {
  readonly registry = new Registry();
  private readonly requests: Counter<'route' | 'method' | 'status'>;
  private readonly latency: Histogram<'route' | 'method' | 'status'>;
  private registryBytes?: Counter<'direction'>;

  constructor(readonly role: string) {
    this.registry.setDefaultLabels({ role });
    collectDefaultMetrics({ register: this.registry, prefix: 'ukc_' });
    this.requests = new Counter({
      name: 'ukc_http_requests_total',
      help: 'HTTP requests answered, by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      registers: [this.registry],
    });
    this.latency = new Histogram({
      name: 'ukc_http_request_duration_seconds',
      help: 'Time from request to the end of the response, by route template, method and status',
      labelNames: ['route', 'method', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
      registers: [this.registry],
    });
  }

  /** Observes one finished HTTP request (the request logging's `onFinished`). */
  readonly observeRequest = (f: FinishedRequest): void => {
    const labels = { route: f.route, method: METHODS.has(f.method) ? f.method : 'other', status: String(f.status) };
    this.requests.inc(labels);
    this.latency.observe(labels, f.durationSeconds);
  };

  /** Registry body bytes received and sent (`direction` in|out). */
  readonly observeRegistryBytes = (bytesIn: number, bytesOut: number): void => {
    this.registryBytes ??= new Counter({
      name: 'ukc_registry_bytes_total',
      help: 'Registry request and response body bytes, by direction (in: uploads and manifests; out: blobs and manifests served)',
      labelNames: ['direction'],
      registers: [this.registry],
    });
    if (bytesIn > 0) this.registryBytes.inc({ direction: 'in' }, bytesIn);
    if (bytesOut > 0) this.registryBytes.inc({ direction: 'out' }, bytesOut);
  };

  /** The text exposition (`Content-Type` in `contentType`). */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** What a node reads at scrape time. */
export interface NodeMetricSources {
  /** Instance states, one entry per instance. */
  instanceStates(): Iterable<string>;
  /** Bytes the node's image cache holds (local registry blobs and prepared root filesystems). */
  imageCacheBytes(): Promise<number> | number;
}

/** The node's own series: instances by state, boot and network times, gateway traffic and wakes, cache size. */
export class NodeMetrics {
  private readonly boot: Histogram;
  private readonly net: Histogram;
  private readonly gatewayRequests: Counter<'status'>;
  private readonly wakes: Counter<'result'>;

  constructor(metrics: RoleMetrics, sources: NodeMetricSources) {
    const registers = [metrics.registry];
    new Gauge({
      name: 'ukc_instances',
      help: 'Instances on this node, by state',
      labelNames: ['state'],
      registers,
      collect() {
        this.reset();
        const counts = new Map<string, number>();
        for (const s of sources.instanceStates()) counts.set(s, (counts.get(s) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'ukc_node_image_cache_bytes',
      help: "Bytes held by the node's image cache (local registry blobs and prepared root filesystems)",
      registers,
      async collect() {
        this.set(await sources.imageCacheBytes());
      },
    });
    // Microseconds as recorded (boot_time_us, net_time_us), exported in seconds.
    const buckets = [0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];
    this.boot = new Histogram({ name: 'ukc_instance_boot_seconds', help: 'Instance boot time (boot_time_us): start to the guest running', buckets, registers });
    this.net = new Histogram({ name: 'ukc_instance_net_seconds', help: 'Instance network time (net_time_us): start to the first port listening', buckets, registers });
    this.gatewayRequests = new Counter({ name: 'ukc_gateway_requests_total', help: 'HTTP requests answered by the gateway, by status', labelNames: ['status'], registers });
    this.wakes = new Counter({ name: 'ukc_gateway_wakes_total', help: 'Standby instances the gateway woke, by result', labelNames: ['result'], registers });
  }

  observeBoot(bootTimeUs: number): void {
    this.boot.observe(bootTimeUs / 1e6);
  }

  observeNet(netTimeUs: number): void {
    this.net.observe(netTimeUs / 1e6);
  }

  gatewayRequest(status: number): void {
    this.gatewayRequests.inc({ status: String(status) });
  }

  gatewayWake(ok: boolean): void {
    this.wakes.inc({ result: ok ? 'ok' : 'failed' });
  }
}
