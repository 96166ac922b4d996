/**
 * The instance record and its state machine.
 *
 *   stopped ──start──► starting ──started──► running ──stop──► stopping ──exited──► stopped
 *      ▲                  │  │  ▲               │                  │
 *      │                  │  └──┼──stop─────────┼──────────────────┘
 *      │                  └─────┼──exited───────┤
 *      └────────────────────────┼──exited───────┘
 *                          wake │
 *   standby ────────────────────┘   ◄──exited── stopping (platform stop for scale-to-zero)
 *   running ──stop/standby──► draining ──► stopping  (in a service group: the gateway
 *                                                     finishes requests in flight first)
 *   any state ──delete──► deleted (the record is removed; only waiters see it)
 *
 * A pending automatic restart is a `stopped` instance with `restart.next_at`
 * set. `ALLOWED_TRANSITIONS` is the single source of truth; the lifecycle
 * asserts every change against it.
 */

export const INSTANCE_STATES = ['stopped', 'starting', 'running', 'draining', 'stopping', 'standby', 'deleted'] as const;
export type InstanceState = (typeof INSTANCE_STATES)[number];

export const ALLOWED_TRANSITIONS: Readonly<Record<InstanceState, readonly InstanceState[]>> = {
  stopped: ['starting', 'deleted'],
  starting: ['running', 'stopping', 'stopped', 'deleted'],
  running: ['draining', 'stopping', 'stopped', 'standby', 'deleted'],
  draining: ['stopping', 'stopped', 'deleted'],
  stopping: ['stopped', 'standby', 'deleted'],
  standby: ['starting', 'stopped', 'deleted'],
  deleted: [],
};

export function canTransition(from: InstanceState, to: InstanceState): boolean {
  return ALLOWED_TRANSITIONS[from].includes(to);
}

/** Bits of `stop_reason`: who ended the run. */
export const StopReason = {
  FORCED: 16,
  USER: 8,
  PLATFORM: 4,
  APP: 2,
  KERNEL: 1,
} as const;

/** Named combinations, as Unikraft Cloud reports them. */
export const StopReasons = {
  /** The user stopped it and the app shut down in time (exit_code set). */
  cleanUserStop: StopReason.USER | StopReason.PLATFORM | StopReason.APP | StopReason.KERNEL, // 15
  /** The user stopped it and the grace period ran out (or force was asked). */
  forcedUserStop: StopReason.FORCED | StopReason.USER | StopReason.PLATFORM, // 28
  /** The platform stopped it (scale-to-zero, node shutdown) cleanly. */
  platformStop: StopReason.PLATFORM | StopReason.APP | StopReason.KERNEL, // 7
  /** The app exited on its own (exit_code set). */
  appExited: StopReason.APP | StopReason.KERNEL, // 3
  /** Killed by a signal it did not ask for (stop_code = signal number). */
  crash: StopReason.KERNEL, // 1
  /** The platform killed it for a limit (memory): stop_code = signal number. */
  limitKill: StopReason.PLATFORM | StopReason.KERNEL, // 5
  /** The platform could not start it, or lost it (runtime gone after a controller restart). */
  platformFailure: StopReason.PLATFORM, // 4
} as const;

export const RESTART_POLICIES = ['never', 'always', 'on-failure'] as const;
export type RestartPolicy = (typeof RESTART_POLICIES)[number];

export const FEATURES = ['delete-on-stop'] as const;
export type Feature = (typeof FEATURES)[number];

export interface ScaleToZero {
  policy: 'on' | 'off' | 'idle';
  stateful: boolean;
  cooldown_time_ms: number;
  notify_time_ms?: number;
}

export interface ServiceSpec {
  port: number;
  destination_port?: number;
  handlers?: ('tls' | 'http' | 'redirect')[];
}

export type ServiceGroupRequest =
  | { uuid?: string; name?: string }
  | { services: ServiceSpec[]; domains?: { name: string; certificate?: { uuid?: string; name?: string } }[]; soft_limit?: number; hard_limit?: number };

export type VolumeRequest = { uuid?: string; name?: string; at: string; readonly?: boolean; size_mb?: number };

export interface RestartState {
  attempt: number;
  /** Epoch ms of the next automatic start, or null when none is pending. */
  next_at: number | null;
}

/** One instance as stored. Times are epoch milliseconds; the API renders them as ISO strings. */
export interface InstanceRecord {
  uuid: string;
  name: string;
  owner: string;
  createdAt: number;
  state: InstanceState;
  privateFqdn: string;
  privateIp: string | null;
  /** Digest-pinned reference. */
  image: string;
  /** How the image was asked for (for later pulls with the same policy). */
  imagePullPolicy: 'always' | 'never' | 'if_not_present';
  memoryMb: number;
  vcpus: number;
  args: string[];
  env: Record<string, string>;
  startCount: number;
  restartCount: number;
  startedAt: number | null;
  stoppedAt: number | null;
  bootTimeUs: number | null;
  netTimeUs: number | null;
  stopReason: number | null;
  exitCode: number | null;
  stopCode: number | null;
  restartPolicy: RestartPolicy;
  restart: RestartState;
  scaleToZero: ScaleToZero | null;
  serviceGroup: ServiceGroupRequest | null;
  volumes: VolumeRequest[];
  tags: string[];
  features: Feature[];
  /** Driver token of the current run (for re-adoption), null when not running. */
  runtimeRef: string | null;
}

/** Uptime of the current run (or the last one when stopped). */
export function uptimeMs(r: InstanceRecord, now: number): number {
  if (r.startedAt === null) return 0;
  const live = r.state === 'running' || r.state === 'draining' || r.state === 'stopping';
  const end = live ? now : (r.stoppedAt ?? now);
  return Math.max(0, end - r.startedAt);
}

const iso = (ms: number | null): string | undefined => (ms === null ? undefined : new Date(ms).toISOString());

/** The API shape (§5). `withOwner` adds the owner field (root callers). */
export function presentInstance(r: InstanceRecord, now: number, withOwner: boolean): Record<string, unknown> {
  const out: Record<string, unknown> = {
    uuid: r.uuid,
    name: r.name,
    created_at: iso(r.createdAt),
    state: r.state,
    // Every instance of this node is a micro VM's equivalent (the contract's InstanceType; `full` is refused at create).
    type: 'micro',
    private_fqdn: r.privateFqdn,
    private_ip: r.privateIp ?? undefined,
    image: r.image,
    memory_mb: r.memoryMb,
    vcpus: r.vcpus,
    args: r.args,
    env: r.env,
    start_count: r.startCount,
    restart_count: r.restartCount,
    started_at: iso(r.startedAt),
    stopped_at: iso(r.stoppedAt),
    uptime_ms: uptimeMs(r, now),
    boot_time_us: r.bootTimeUs ?? undefined,
    net_time_us: r.netTimeUs ?? undefined,
    stop_reason: r.stopReason ?? undefined,
    exit_code: r.exitCode ?? undefined,
    stop_code: r.stopCode ?? undefined,
    restart_policy: r.restartPolicy,
    restart: { attempt: r.restart.attempt, next_at: iso(r.restart.next_at) },
    scale_to_zero: r.scaleToZero ?? undefined,
    service_group: r.serviceGroup ?? undefined,
    volumes: r.volumes,
    tags: r.tags,
    features: r.features,
  };
  if (withOwner) out.owner = r.owner;
  for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
  return out;
}
