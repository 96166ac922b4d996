/**
 * The settings table of `ukcd`: every named limit of the roles, with its key, kind, range,
 * description and the roles it applies to. The defaults are not written here: each group
 * takes the DEFAULT_* object of the code it configures, so the table and the code cannot
 * disagree, and each group lists every field of that code's limits type (the compiler
 * refuses a group that forgets one).
 *
 * `ukcd config docs` prints this table; docs/configuration.md is its output.
 */
import { DEFAULT_LIMITS as DEFAULT_REGISTRY_LIMITS, DEFAULT_GC_GRACE_PERIOD_MS, DEFAULT_REGISTRY_REQUEST_RATE, type RegistryLimits } from '../registry/index.js';
import { DEFAULT_REGISTRY_TOKEN_TTL_SECONDS, MAX_REGISTRY_TOKEN_TTL_SECONDS } from '../auth/index.js';
import {
  DEFAULT_CERTIFICATE_LIMITS,
  DEFAULT_CONTROL_PLANE_TOKEN_CACHE,
  DEFAULT_GATEWAY_LIMITS,
  DEFAULT_IMAGE_CACHE_BYTES,
  DEFAULT_LEASE_LOG_MAX_LINES,
  DEFAULT_LOCAL_IMAGES_LIMITS,
  DEFAULT_MICRO_LIMITS,
  DEFAULT_NETNS_POOL_SIZE,
  DEFAULT_NODE_API_LIMITS,
  DEFAULT_NODE_API_RATE_LIMIT,
  DEFAULT_SERVICE_LIMITS,
  type CertificateLimits,
  type GatewayLimits,
  type LocalImagesLimits,
  type MicroDriverLimits,
  type NodeApiLimits,
  type ServiceLimits,
} from '../node/index.js';
import { DEFAULT_CONTROL_PLANE_LIMITS, DEFAULT_CONTROL_PLANE_RATE_LIMIT, type ControlPlaneLimits } from '../controlplane/index.js';
import { LOG_LEVELS } from '../log/index.js';
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_SHUTDOWN_DEADLINE_MS, LISTENER_TIMEOUTS } from '../util/index.js';
import type { Role, Setting, SettingValue } from './schema.js';

interface FieldSpec {
  kind: 'int' | 'bytes' | 'duration';
  /** Durations: the unit the code takes (default ms). */
  unit?: 'ms' | 's';
  /** Default 0. */
  min?: number;
  max?: number;
  description: string;
  flag?: string;
  /** The key's last part when the derived one reads badly. */
  name?: string;
}

/** Settings that fill one limits object of the code, keyed like its fields. */
export interface SettingGroup<T> {
  readonly settings: readonly Setting[];
  /** The limits object from effective values (`valueOf` answers a setting's value by key). */
  pick(valueOf: (key: string) => SettingValue): T;
}

/** `maxBlobBytes` → `max_blob_bytes`; a duration's unit suffix (`Ms`, `S`, `Seconds`) is dropped: the value carries it. */
function keyOf(field: string, spec: FieldSpec): string {
  if (spec.name !== undefined) return spec.name;
  let name = field;
  if (spec.kind === 'duration') name = name.replace(spec.unit === 's' ? /(Seconds|S)$/ : /Ms$/, '');
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function group<T extends { [K in keyof T]: number }>(
  section: string,
  roles: readonly Role[],
  defaults: Readonly<T>,
  fields: { readonly [K in keyof T]-?: FieldSpec },
): SettingGroup<T> {
  const entries = (Object.keys(fields) as (keyof T & string)[]).map((field) => {
    const spec = fields[field];
    const setting: Setting = {
      key: `${section}.${keyOf(field, spec)}`,
      kind: spec.kind,
      ...(spec.kind === 'duration' ? { unit: spec.unit ?? 'ms' } : {}),
      default: defaults[field],
      min: spec.min ?? 0,
      max: spec.max ?? Number.MAX_SAFE_INTEGER,
      description: spec.description,
      roles,
      ...(spec.flag !== undefined ? { flag: spec.flag } : {}),
    };
    return [field, setting] as const;
  });
  return {
    settings: entries.map(([, s]) => s),
    pick(valueOf) {
      const out: Record<string, number> = {};
      for (const [field, s] of entries) out[field] = valueOf(s.key) as number;
      return out as T;
    },
  };
}

function single(setting: Setting): Setting {
  return setting;
}

const ALL: readonly Role[] = ['dev', 'controlplane', 'node', 'registry'];
const NODE: readonly Role[] = ['dev', 'node'];
const CONTROLPLANE: readonly Role[] = ['dev', 'controlplane'];
const MiB = 1024 * 1024;

export const LOG_LEVEL = single({
  key: 'log.level',
  kind: 'enum',
  values: LOG_LEVELS,
  default: 'info',
  description: 'Lowest level of the JSON log lines written on stderr.',
  roles: ALL,
  flag: '--log-level',
});

export const LISTENER_IDLE_TIMEOUT = single({
  key: 'listener.idle_timeout',
  kind: 'duration',
  unit: 'ms',
  default: DEFAULT_IDLE_TIMEOUT_MS,
  min: 0,
  max: Number.MAX_SAFE_INTEGER,
  description: 'A connection that moves no byte either way for this long is cut (a stalled upload frees its session); 0 disables it. Every listener: API and registries.',
  roles: ALL,
});

export const LISTENER_HEADERS_TIMEOUT = single({
  key: 'listener.headers_timeout',
  kind: 'duration',
  unit: 'ms',
  default: LISTENER_TIMEOUTS.headersTimeout,
  min: 1000,
  max: 3_600_000,
  description: "Longest time a client may take to send a request's headers (slow-headers clients are cut). Every listener.",
  roles: ALL,
});

export const LISTENER_KEEP_ALIVE_TIMEOUT = single({
  key: 'listener.keep_alive_timeout',
  kind: 'duration',
  unit: 'ms',
  default: LISTENER_TIMEOUTS.keepAliveTimeout,
  min: 0,
  max: 3_600_000,
  description: 'How long an idle keep-alive connection waits for its next request. Every listener.',
  roles: ALL,
});

export const SHUTDOWN_DEADLINE = single({
  key: 'shutdown.deadline',
  kind: 'duration',
  unit: 'ms',
  default: DEFAULT_SHUTDOWN_DEADLINE_MS,
  min: 0,
  max: 3_600_000,
  description: 'On SIGTERM a daemon stops accepting at once and lets requests in flight finish for this long, then cuts the rest. Every role.',
  roles: ALL,
});

export const IMAGE_CACHE_BYTES = single({
  key: 'images.cache_budget',
  kind: 'bytes',
  default: DEFAULT_IMAGE_CACHE_BYTES,
  min: 64 * MiB,
  max: Number.MAX_SAFE_INTEGER,
  description: "Most bytes the node's image cache keeps (registry blobs and root filesystems); pulled images no live or standby instance uses are evicted least recently used first. `ukcd node --image-cache-mib` sets it too.",
  roles: NODE,
});

export const GC_GRACE_PERIOD = single({
  key: 'gc.grace_period',
  kind: 'duration',
  unit: 'ms',
  default: DEFAULT_GC_GRACE_PERIOD_MS,
  min: 0,
  max: Number.MAX_SAFE_INTEGER,
  description: '`ukcd registry gc` keeps unreferenced blobs younger than this.',
  roles: ['registry'],
  flag: '--grace-period',
});

export const NETNS_POOL_SIZE = single({
  key: 'network.netns_pool_size',
  kind: 'int',
  default: DEFAULT_NETNS_POOL_SIZE,
  min: 0,
  max: 1024,
  description: 'Network namespaces kept ready (bridge port and lease) for the next instance starts.',
  roles: NODE,
});

export const LEASE_LOG_MAX_LINES = single({
  key: 'network.lease_log_max_lines',
  kind: 'int',
  default: DEFAULT_LEASE_LOG_MAX_LINES,
  min: 10,
  max: 10_000_000,
  description: "Lines the node's lease log may grow to before it is compacted.",
  roles: NODE,
});

export const REGISTRY_TOKEN_TTL = single({
  key: 'registry_token.ttl',
  kind: 'duration',
  unit: 's',
  default: DEFAULT_REGISTRY_TOKEN_TTL_SECONDS,
  min: 1,
  max: MAX_REGISTRY_TOKEN_TTL_SECONDS,
  description: 'Lifetime of the registry tokens issued by `/v2/token` (control plane, node, `ukcd registry --auth`).',
  roles: ALL,
});

/** How often `ukcd dev`'s node reports its health to the control plane. */
export const DEV_HEARTBEAT_INTERVAL = single({
  key: 'dev.heartbeat_interval',
  kind: 'duration',
  unit: 'ms',
  default: 10_000,
  min: 100,
  max: 3_600_000,
  description: "How often `ukcd dev`'s node reports its health to the control plane (keep it below `controlplane.node_offline_after`).",
  roles: ['dev'],
});

export const REGISTRY = group<RegistryLimits>('registry', ALL, DEFAULT_REGISTRY_LIMITS, {
  maxManifestBytes: { kind: 'bytes', min: 4 * MiB, description: 'Largest manifest accepted on PUT (413 above); the OCI spec asks for at least 4 MiB.' },
  maxBlobBytes: { kind: 'bytes', min: 1, description: 'Largest blob accepted (413 above).' },
  maxPageSize: { kind: 'int', min: 1, max: 100_000, description: 'Page size of tags list and catalog when `n` is absent, and the clamp of any `n`.' },
  maxUploadsPerPrincipal: { kind: 'int', min: 1, description: 'Open upload sessions one principal may hold (429 TOOMANYREQUESTS beyond).' },
  retryAfterSeconds: { kind: 'duration', unit: 's', min: 1, max: 86_400, description: '`Retry-After` announced with a 429.' },
  uploadSessionTimeoutMs: { kind: 'duration', min: 1000, description: 'An upload session idle this long is purged.', flag: '--upload-timeout' },
  uploadPurgeIntervalMs: { kind: 'duration', description: 'How often idle upload sessions are purged; 0 disables the timer.' },
  maxRepositoryNameLength: { kind: 'int', min: 1, max: 4096, description: 'Longest repository name.' },
  maxReferrers: { kind: 'int', min: 1, description: 'Referrers returned for one subject at most.' },
  maxDrainBytes: { kind: 'bytes', description: 'After an error answered before the body was read, up to this many body bytes are read and dropped so the client sees the answer.' },
  maxDrainMs: { kind: 'duration', name: 'max_drain_time', description: 'How long such a drain may last before the connection is cut.' },
});

export const CONTROLPLANE_LIMITS = group<ControlPlaneLimits>('controlplane', CONTROLPLANE, DEFAULT_CONTROL_PLANE_LIMITS, {
  maxBodyBytes: { kind: 'bytes', min: 1024, description: 'Largest /v1 request body (413 above).' },
  maxBatchItems: { kind: 'int', min: 1, description: 'Items accepted in one /v1 batch body.' },
  nodeOfflineAfterMs: { kind: 'duration', min: 1000, description: 'A node silent this long is `offline`.' },
});

interface RateLimit {
  ratePerSecond: number;
  burst: number;
}
const RATE_FIELDS = (what: string): { readonly [K in keyof RateLimit]-?: FieldSpec } => ({
  ratePerSecond: { kind: 'int', min: 1, description: `Sustained requests per second per account on ${what} (429 + Retry-After beyond).` },
  burst: { kind: 'int', min: 1, description: `Requests one account may send at once after a quiet period on ${what}.` },
});

export const CONTROLPLANE_RATE = group<RateLimit>('controlplane_rate', CONTROLPLANE, DEFAULT_CONTROL_PLANE_RATE_LIMIT, RATE_FIELDS('the control plane API (/v1)'));
export const NODE_RATE = group<RateLimit>('node_rate', NODE, DEFAULT_NODE_API_RATE_LIMIT, RATE_FIELDS('the node API (/v1)'));
export const REGISTRY_RATE = group<RateLimit>('registry_rate', ['dev', 'node', 'registry'], DEFAULT_REGISTRY_REQUEST_RATE, RATE_FIELDS('the token-checked registries (the node\'s local one, `ukcd registry --auth`)'));

type InstanceFields = Pick<
  NodeApiLimits,
  'maxMemoryMb' | 'minMemoryMb' | 'maxVcpus' | 'maxReplicas' | 'maxInstances' | 'maxArgs' | 'maxEnv' | 'maxTags' | 'maxCreateTimeoutS' | 'maxBatchItems' | 'logReadDefaultBytes' | 'logReadMaxBytes'
>;
export const INSTANCES = group<InstanceFields>('instances', NODE, DEFAULT_NODE_API_LIMITS, {
  maxMemoryMb: { kind: 'int', min: 1, description: 'Largest `memory_mb` of an instance.' },
  minMemoryMb: { kind: 'int', min: 1, description: 'Smallest `memory_mb` of an instance.' },
  maxVcpus: { kind: 'int', min: 1, max: 4096, description: 'Largest `vcpus` of an instance.' },
  maxReplicas: { kind: 'int', min: 0, description: 'Largest `replicas` of one create.' },
  maxInstances: { kind: 'int', min: 1, description: 'Instances the node holds in total (ENOSPC above); never more than its bridge takes: 1023 ports less the ready namespaces of the pool.' },
  maxArgs: { kind: 'int', min: 0, description: 'Arguments of one instance.' },
  maxEnv: { kind: 'int', min: 0, description: 'Environment variables of one instance.' },
  maxTags: { kind: 'int', min: 0, description: 'Tags of one instance.' },
  maxCreateTimeoutS: { kind: 'duration', unit: 's', min: 1, description: 'Longest `timeout_s` a create may wait for the instance to run.' },
  maxBatchItems: { kind: 'int', min: 1, description: 'Items accepted in one /v1 batch body.' },
  logReadDefaultBytes: { kind: 'bytes', min: 1, description: 'Console bytes returned by a log read without `limit`.' },
  logReadMaxBytes: { kind: 'bytes', min: 1, description: 'Largest `limit` of one log read.' },
});

type LifecycleFields = Pick<NodeApiLimits, 'stopGraceMs' | 'exitWaitMs' | 'restartBaseDelayMs' | 'restartMaxDelayMs' | 'healthyResetMs' | 'maxWaitMs' | 'drainTimeoutMs'>;
export const LIFECYCLE = group<LifecycleFields>('lifecycle', NODE, DEFAULT_NODE_API_LIMITS, {
  stopGraceMs: { kind: 'duration', description: 'Time an app gets to exit after a stop request before it is killed (when the request names none).' },
  exitWaitMs: { kind: 'duration', min: 1, description: "How long to wait for the runtime's exit report after the grace period or a kill." },
  restartBaseDelayMs: { kind: 'duration', description: 'Automatic restarts back off from this delay (doubling)…' },
  restartMaxDelayMs: { kind: 'duration', description: '…up to this one.' },
  healthyResetMs: { kind: 'duration', description: 'A run that stays up this long resets the restart backoff.' },
  maxWaitMs: { kind: 'duration', min: 1, description: 'Upper bound of any wait, also of `timeout_ms: -1`.' },
  drainTimeoutMs: { kind: 'duration', description: "How long a stop waits for a service group member's requests to finish when the caller gives no drain timeout." },
});

type NodeApiFields = Pick<NodeApiLimits, 'maxBodyBytes' | 'logCapacityBytes' | 'maxImageFilters'>;
export const NODE_API = group<NodeApiFields>('node_api', NODE, DEFAULT_NODE_API_LIMITS, {
  maxBodyBytes: { kind: 'bytes', min: 1024, description: 'Largest /v1 request body (413 above).' },
  logCapacityBytes: { kind: 'bytes', min: 4096, description: 'Console bytes kept per instance (ring file).' },
  maxImageFilters: { kind: 'int', min: 1, description: 'Filters accepted by `GET /v1/images/list`.' },
});

/** On or off as a setting of its own (the group's fields are numbers). */
export const RUNTIME_USER_NAMESPACES = single({
  key: 'runtime.user_namespaces',
  kind: 'enum',
  values: ['on', 'off'],
  default: DEFAULT_MICRO_LIMITS.userNamespaces ? 'on' : 'off',
  description: "Each instance's app in its own user namespace (0..65535 mapped to a host range of its own); off only on a node whose image cache cannot take idmapped mounts.",
  roles: NODE,
});

export const RUNTIME = group<Omit<MicroDriverLimits, 'userNamespaces'>>('runtime', NODE, DEFAULT_MICRO_LIMITS, {
  pidsMax: { kind: 'int', min: 1, description: 'Most processes (threads included) one instance may have.' },
  netProbeTimeoutMs: { kind: 'duration', min: 1, description: 'How long `net_time_us` is probed for after a start.' },
  netProbeFastMs: { kind: 'duration', name: 'net_probe_fast_interval', min: 1, description: 'Listener probe interval right after a start…' },
  netProbeFastWindowMs: { kind: 'duration', description: '…for this long, then the interval grows by half each tick…' },
  netProbeMaxIntervalMs: { kind: 'duration', min: 1, description: '…up to this.' },
  netProbeTicksPerMs: { kind: 'int', min: 1, description: 'Listener probes run per ms across all starts (many starts at once each probe less often).' },
  livenessPollMs: { kind: 'duration', name: 'liveness_poll_interval', min: 10, description: "How often an adopted run's liveness is checked." },
  consoleFileMaxBytes: { kind: 'bytes', min: 4096, description: 'Console bytes kept on disk per run before the file is cut.' },
  userNamespaceFirstHostId: { kind: 'int', min: 65536, max: 4_000_000_000, description: 'First host uid/gid of the ranges handed to instances (each gets 65,536 ids).' },
  userNamespaceRanges: { kind: 'int', min: 1, max: 65536, description: 'How many such ranges exist: the most instances the node runs at once with user namespaces.' },
  writableLayerMaxBytes: { kind: 'bytes', min: 1024 * 1024, description: "Size of an instance's writable layer (a tmpfs charged to its memory cgroup); writes past it get ENOSPC." },
  launcherPoolSize: { kind: 'int', max: 1024, description: 'Launchers kept pre-started for the next starts; 0 spawns each on demand.' },
  launcherReadyTimeoutMs: { kind: 'duration', min: 1, description: 'How long a pre-started launcher may take to report ready before it is dropped.' },
});

export const GATEWAY = group<GatewayLimits>('gateway', NODE, DEFAULT_GATEWAY_LIMITS, {
  maxRetries: { kind: 'int', max: 100, description: 'Extra attempts on other instances for a request that failed retryably.' },
  wakeTimeoutMs: { kind: 'duration', min: 1, description: 'How long a request waits for a standby instance to run.' },
  connectRetryWindowMs: { kind: 'duration', description: 'After an instance starts, connection refusals are retried (app still binding) for this long.' },
  connectRetryMaxDelayMs: { kind: 'duration', min: 1, description: 'Largest pause between those connection retries.' },
  defaultHardLimit: { kind: 'int', min: 1, description: 'Per-instance concurrency cap when the service group sets no hard_limit.' },
  maxFreeSocketsPerInstance: { kind: 'int', description: 'Idle keep-alive connections kept per instance.' },
  upstreamIdleTimeoutMs: { kind: 'duration', min: 1, description: "Idle keep-alive connections to instances are closed after this long (below the apps' own timeouts)." },
  clientKeepAliveTimeoutMs: { kind: 'duration', description: 'Client keep-alive idle timeout.' },
  headersTimeoutMs: { kind: 'duration', min: 1, description: "Longest time to receive a client's request headers." },
  defaultDrainTimeoutMs: { kind: 'duration', description: 'Drain bound when the caller gives none.' },
  routeCacheSize: { kind: 'int', min: 1, description: 'Routing decisions cached per public port (emptied when full).' },
});

export const SERVICES = group<ServiceLimits>('services', NODE, DEFAULT_SERVICE_LIMITS, {
  maxServicesPerGroup: { kind: 'int', min: 1, description: 'Services (published ports) of one service group.' },
  maxDomainsPerGroup: { kind: 'int', min: 1, description: 'Domains of one service group.' },
  maxConcurrencyLimit: { kind: 'int', min: 1, description: 'Upper bound of a service group’s soft_limit and hard_limit.' },
  maxNameAttempts: { kind: 'int', min: 1, description: 'Generated-name collisions tolerated before a create gives up.' },
});

export const CERTIFICATES = group<CertificateLimits>('certificates', NODE, DEFAULT_CERTIFICATE_LIMITS, {
  maxChainBytes: { kind: 'bytes', min: 1024, description: 'Largest certificate chain (PEM) a user may upload.' },
  maxKeyBytes: { kind: 'bytes', min: 256, description: 'Largest private key (PEM) a user may upload.' },
  maxChainCertificates: { kind: 'int', min: 1, description: 'Certificates in one chain.' },
});

export const IMAGES = group<LocalImagesLimits>('images', NODE, DEFAULT_LOCAL_IMAGES_LIMITS, {
  maxConfigBytes: { kind: 'bytes', min: 1024, description: 'Largest image config the node reads.' },
  maxManifestBytes: { kind: 'bytes', min: 1024, description: 'Largest manifest the node reads.' },
  maxInitrdBytes: { kind: 'bytes', min: MiB, description: "Largest initrd accepted; also bounds a CPIO's extracted size and a layer's decompressed size." },
  maxKernelBytes: { kind: 'bytes', min: MiB, description: 'Largest kernel layer accepted, decompressed.' },
  maxCpioEntries: { kind: 'int', min: 1, description: 'Most entries in a CPIO initrd.' },
});

interface TokenCache {
  positiveTtlMs: number;
  negativeTtlMs: number;
  maxCachedTokens: number;
  requestTimeoutMs: number;
}
export const NODE_AUTH = group<TokenCache>('node_auth', ['node'], DEFAULT_CONTROL_PLANE_TOKEN_CACHE, {
  positiveTtlMs: { kind: 'duration', description: "With `--auth-url`: how long the control plane's yes to a token is trusted.", flag: '--auth-cache-seconds' },
  negativeTtlMs: { kind: 'duration', max: 1000, description: 'With `--auth-url`: how long a refusal is remembered (never more than 1 s).' },
  maxCachedTokens: { kind: 'int', min: 1, description: 'With `--auth-url`: tokens cached at once (the oldest goes first).' },
  requestTimeoutMs: { kind: 'duration', min: 1, description: 'With `--auth-url`: longest wait for the control plane.' },
});

/** Every setting, in the order the docs list them. */
export const SETTINGS: readonly Setting[] = [
  LOG_LEVEL,
  LISTENER_IDLE_TIMEOUT,
  LISTENER_HEADERS_TIMEOUT,
  LISTENER_KEEP_ALIVE_TIMEOUT,
  ...REGISTRY.settings,
  REGISTRY_TOKEN_TTL,
  ...REGISTRY_RATE.settings,
  GC_GRACE_PERIOD,
  SHUTDOWN_DEADLINE,
  IMAGE_CACHE_BYTES,
  ...CONTROLPLANE_LIMITS.settings,
  ...CONTROLPLANE_RATE.settings,
  DEV_HEARTBEAT_INTERVAL,
  ...NODE_API.settings,
  ...NODE_RATE.settings,
  ...NODE_AUTH.settings,
  ...INSTANCES.settings,
  ...LIFECYCLE.settings,
  ...RUNTIME.settings,
  RUNTIME_USER_NAMESPACES,
  NETNS_POOL_SIZE,
  LEASE_LOG_MAX_LINES,
  ...IMAGES.settings,
  ...GATEWAY.settings,
  ...SERVICES.settings,
  ...CERTIFICATES.settings,
];
