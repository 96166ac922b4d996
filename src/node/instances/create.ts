/**
 * `POST /v1/instances`: the request schema (§4), its cross-field rules, and
 * the plan that turns one request into `replicas + 1` records.
 *
 * Naming: without `name`, each instance gets `<image-basename>-<5 chars [a-z0-9]>`.
 * With `name` and replicas, the first instance takes the name itself and the
 * others `<name>-1` … `<name>-<replicas>` (deterministic, so a retry collides
 * with EEXIST instead of creating a second set).
 *
 * Not implemented yet on this node, refused with EOPNOTSUPP (after structural
 * checks) unless the integration enables them: `service_group` (and with it
 * `scale_to_zero`), `volumes`, and `type: full`.
 */
import { randomInt, randomUUID } from 'node:crypto';
import { Errno, NodeError } from '../errors.js';
import { v } from '../../api/index.js';
import type { ImageConfig, PullPolicy, ResolvedImage } from '../images/resolver.js';
import { serviceRulesViolation } from '../services/index.js';
import {
  FEATURES,
  RESTART_POLICIES,
  type InstanceRecord,
  type ScaleToZero,
  type ServiceGroupRequest,
} from './model.js';

export interface InstanceLimits {
  maxMemoryMb: number;
  minMemoryMb: number;
  maxVcpus: number;
  maxReplicas: number;
  /** Instances the node holds in total (ENOSPC above). */
  maxInstances: number;
  maxArgs: number;
  maxEnv: number;
  maxTags: number;
  /** Longest `timeout_s` a create may wait. */
  maxCreateTimeoutS: number;
}

export const DEFAULT_INSTANCE_LIMITS: InstanceLimits = {
  maxMemoryMb: 65536,
  minMemoryMb: 16,
  maxVcpus: 64,
  maxReplicas: 256,
  maxInstances: 10000,
  maxArgs: 256,
  maxEnv: 256,
  maxTags: 64,
  maxCreateTimeoutS: 3600,
};

export interface Capabilities {
  serviceGroups: boolean;
  volumes: boolean;
}

/** DNS label: the name becomes `<name>.internal`. */
export const INSTANCE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const nameSchema = v.string({ pattern: INSTANCE_NAME, patternHint: 'must be a DNS label: a-z, 0-9 and -, at most 63' });
const ref = v.string({ minLength: 1, maxLength: 128 });

const serviceSchema = v.object({
  port: v.int({ min: 1, max: 65535 }),
  destination_port: v.optional(v.int({ min: 1, max: 65535 })),
  handlers: v.optional(v.array(v.oneOf(['tls', 'http', 'redirect'] as const), { maxItems: 3 })),
});

export const serviceGroupSchema = v.refine(
  v.object({
    uuid: v.optional(ref),
    name: v.optional(ref),
    services: v.optional(v.array(serviceSchema, { minItems: 1, maxItems: 64 })),
    domains: v.optional(
      v.array(
        v.object({
          name: v.string({ minLength: 1, maxLength: 253 }),
          certificate: v.optional(v.object({ uuid: v.optional(ref), name: v.optional(ref) })),
        }),
        { maxItems: 64 },
      ),
    ),
    soft_limit: v.optional(v.int({ min: 1, max: 1_000_000 })),
    hard_limit: v.optional(v.int({ min: 1, max: 1_000_000 })),
  }),
  (g) => {
    const byRef = g.uuid !== undefined || g.name !== undefined;
    const inline = g.services !== undefined || g.domains !== undefined || g.soft_limit !== undefined || g.hard_limit !== undefined;
    if (byRef && inline) return 'either reference an existing group (uuid or name) or describe a new one (services), not both';
    if (g.uuid !== undefined && g.name !== undefined) return 'exactly one of uuid or name';
    if (!byRef && g.services === undefined) return 'a new service group needs services';
    if (g.soft_limit !== undefined && g.hard_limit !== undefined && g.soft_limit > g.hard_limit)
      return 'soft_limit must not exceed hard_limit';
    return g.services ? serviceRulesViolation(g.services) : undefined;
  },
);

export { serviceRulesViolation } from '../services/index.js';

const scaleToZeroSchema = v.object({
  policy: v.oneOf(['on', 'off', 'idle'] as const),
  stateful: v.optional(v.bool()),
  cooldown_time_ms: v.optional(v.int({ min: 0, max: 86_400_000 })),
  notify_time_ms: v.optional(v.int({ min: 0, max: 86_400_000 })),
});

const volumeSchema = v.refine(
  v.object({
    uuid: v.optional(ref),
    name: v.optional(ref),
    at: v.string({ pattern: /^\/[^\0]{0,1023}$/, patternHint: 'must be an absolute path' }),
    readonly: v.optional(v.bool()),
    size_mb: v.optional(v.int({ min: 1, max: 16 * 1024 * 1024 })),
  }),
  (vol) => {
    if ((vol.uuid === undefined) === (vol.name === undefined)) return 'exactly one of uuid or name';
    if (vol.size_mb !== undefined && vol.uuid !== undefined) return 'size_mb creates a new volume: give a name, not a uuid';
    return undefined;
  },
);

export const pullPolicies = ['always', 'never', 'if_not_present'] as const;

/**
 * An args or env value: the kernel passes argv and environ as C strings, so a
 * NUL byte could only be cut or refused later; it is refused here (EINVAL, 400).
 */
export function execString(maxLength: number) {
  return v.string({ maxLength, pattern: /^[^\0]*$/, patternHint: 'must not contain NUL bytes' });
}

export function createRequestSchema(limits: InstanceLimits) {
  return v.object({
    name: v.optional(nameSchema),
    image: v.byType({
      string: v.string({ minLength: 1, maxLength: 512 }),
      object: v.object({
        url: v.string({ minLength: 1, maxLength: 512 }),
        // The contract's form is a string (see registryCredentials); ukc's older one an object.
        credentials: v.optional(
          v.byType({
            string: v.string({ minLength: 1, maxLength: 4096 }),
            object: v.object({ username: v.string({ maxLength: 256 }), password: v.string({ maxLength: 4096 }) }),
          }),
        ),
        headers: v.optional(v.record(v.string({ maxLength: 4096 }), { maxEntries: 32 })),
        pull_policy: v.optional(v.oneOf(pullPolicies)),
      }),
    }),
    args: v.optional(v.array(execString(4096), { maxItems: limits.maxArgs })),
    env: v.optional(
      v.record(execString(32768), {
        maxEntries: limits.maxEnv,
        key: v.string({ pattern: /^[A-Za-z_][A-Za-z0-9_]{0,255}$/, patternHint: 'must be an environment variable name' }),
      }),
    ),
    memory_mb: v.optional(v.int({ min: limits.minMemoryMb, max: limits.maxMemoryMb })),
    vcpus: v.optional(v.int({ min: 1, max: limits.maxVcpus })),
    replicas: v.optional(v.int({ min: 0, max: limits.maxReplicas })),
    autostart: v.optional(v.bool()),
    timeout_s: v.optional(v.int({ min: 0, max: limits.maxCreateTimeoutS })),
    restart_policy: v.optional(v.oneOf(RESTART_POLICIES)),
    service_group: v.optional(serviceGroupSchema),
    scale_to_zero: v.optional(scaleToZeroSchema),
    features: v.optional(v.array(v.oneOf(FEATURES), { maxItems: FEATURES.length })),
    volumes: v.optional(v.array(volumeSchema, { maxItems: 64 })),
    tags: v.optional(v.array(v.string({ minLength: 1, maxLength: 256 }), { maxItems: limits.maxTags })),
    type: v.optional(v.oneOf(['micro', 'full'] as const)),
    /** The contract's name for the wait: milliseconds (`timeout_s` is the older, in seconds). */
    wait_timeout_ms: v.optional(v.int({ min: 0, max: limits.maxCreateTimeoutS * 1000 })),
    // Fields of the contract a node does not offer: accepted as JSON, refused in checkCreateRules (EOPNOTSUPP).
    ...Object.fromEntries(UNSUPPORTED_CREATE_FIELDS.map((f) => [f, v.optional(v.anyValue())])),
  });
}

/** CreateInstanceRequest fields of the contract this node does not offer (EOPNOTSUPP when given). */
export const UNSUPPORTED_CREATE_FIELDS = [
  'roms', 'plugins', 'annotations', 'template', 'sched_priority', 'schedules', 'autokill', 'hostname',
  'dependencies', 'branch_from', 'checkpoint', 'gateway', 'nameserver', 'network_interfaces', 'gpus',
] as const;

export type CreateRequest = v.Infer<ReturnType<typeof createRequestSchema>>;

/** Cross-field rules and capability checks; throws NodeError. */
export function checkCreateRules(req: CreateRequest, caps: Capabilities): void {
  const features = new Set(req.features ?? []);
  if (features.has('delete-on-stop')) {
    if (req.scale_to_zero !== undefined) throw new NodeError(Errno.EINVAL, 'delete-on-stop cannot be combined with scale_to_zero');
    if ((req.restart_policy ?? 'never') !== 'never')
      throw new NodeError(Errno.EINVAL, 'delete-on-stop needs restart_policy never');
  }
  if (req.scale_to_zero !== undefined && req.service_group === undefined)
    throw new NodeError(Errno.EINVAL, 'scale_to_zero needs a service_group');
  for (const f of UNSUPPORTED_CREATE_FIELDS) {
    if ((req as Record<string, unknown>)[f] !== undefined) throw new NodeError(Errno.EOPNOTSUPP, `${f} is not supported on this node`);
  }
  if (req.timeout_s !== undefined && req.wait_timeout_ms !== undefined)
    throw new NodeError(Errno.EINVAL, 'wait_timeout_ms and timeout_s name the same wait: give one');
  if (createWaitMs(req) > 0 && req.autostart === false)
    throw new NodeError(Errno.EINVAL, 'timeout_s needs autostart');
  if (req.type === 'full')
    throw new NodeError(Errno.EOPNOTSUPP, 'instance type full is not supported on this node (only micro)');
  if (req.service_group !== undefined && !caps.serviceGroups)
    throw new NodeError(Errno.EOPNOTSUPP, 'service groups are not available on this node (it runs without a gateway)');
  if (req.volumes !== undefined && req.volumes.length > 0 && !caps.volumes)
    throw new NodeError(Errno.EOPNOTSUPP, 'volumes are not available on this node yet');
}

/** How long a create waits for its instances to run (ms; 0: it does not wait). */
export function createWaitMs(req: CreateRequest): number {
  return req.wait_timeout_ms ?? (req.timeout_s ?? 0) * 1000;
}

export function imageRequestOf(req: CreateRequest): { url: string; pullPolicy: PullPolicy; credentials?: { username: string; password: string } } {
  if (typeof req.image === 'string') return { url: req.image, pullPolicy: 'if_not_present' };
  if (req.image.headers !== undefined && Object.keys(req.image.headers).length > 0)
    throw new NodeError(Errno.EOPNOTSUPP, 'image.headers are not supported on this node (OCI registries only)');
  const credentials = req.image.credentials === undefined ? undefined : typeof req.image.credentials === 'string' ? registryCredentials(req.image.credentials) : req.image.credentials;
  return {
    url: req.image.url,
    pullPolicy: req.image.pull_policy ?? 'if_not_present',
    ...(credentials ? { credentials } : {}),
  };
}

/**
 * The contract's `image.credentials` string for an OCI registry, as a username and password:
 * `user:password`, the same base64-encoded (a Docker `auth` value), or a bare token (sent as the
 * password of user `token`, which ukc's registries and most others accept for Basic auth).
 */
export function registryCredentials(text: string): { username: string; password: string } {
  const split = (s: string): { username: string; password: string } | undefined => {
    const i = s.indexOf(':');
    return i > 0 ? { username: s.slice(0, i), password: s.slice(i + 1) } : undefined;
  };
  const plain = split(text);
  if (plain) return plain;
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(text) && text.length % 4 === 0) {
    const decoded = split(Buffer.from(text, 'base64').toString('utf8'));
    if (decoded && /^[\x20-\x7e]+$/.test(decoded.username)) return decoded;
  }
  return { username: 'token', password: text };
}

/** `alice/httpserver-python312:latest` → `httpserver-python312` (DNS-safe, bounded). */
export function imageBasename(ref: string): string {
  let s = ref.split('@')[0]!;
  const lastSlash = s.lastIndexOf('/');
  const colon = s.lastIndexOf(':');
  if (colon > lastSlash) s = s.slice(0, colon);
  s = s.slice(lastSlash + 1).toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  return (s === '' ? 'instance' : s).slice(0, 57).replace(/-+$/, '');
}

const SUFFIX_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export function randomSuffix(length = 5): string {
  let out = '';
  for (let i = 0; i < length; i++) out += SUFFIX_ALPHABET[randomInt(SUFFIX_ALPHABET.length)];
  return out;
}

/** Image Env (`K=V` list) with the request's env merged over it. */
export function mergeEnv(imageEnv: readonly string[] | undefined, env: Record<string, string> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of imageEnv ?? []) {
    const eq = entry.indexOf('=');
    if (eq > 0) out[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  for (const [k, val] of Object.entries(env ?? {})) out[k] = val;
  return out;
}

const LABEL_PREFIX = 'cloud.unikraft.v1.instances/scale_to_zero.';
/** Explicit scale_to_zero fields win over the image's label defaults. */
export function scaleToZeroWithLabels(
  req: CreateRequest['scale_to_zero'],
  config: ImageConfig,
): ScaleToZero | null {
  const labels = config.Labels ?? {};
  const lp = labels[`${LABEL_PREFIX}policy`];
  const fromLabels: Partial<ScaleToZero> = {};
  if (lp === 'on' || lp === 'off' || lp === 'idle') fromLabels.policy = lp;
  const ls = labels[`${LABEL_PREFIX}stateful`];
  if (ls === 'true' || ls === 'false') fromLabels.stateful = ls === 'true';
  const lc = Number(labels[`${LABEL_PREFIX}cooldown_time_ms`]);
  if (labels[`${LABEL_PREFIX}cooldown_time_ms`] !== undefined && Number.isSafeInteger(lc) && lc >= 0) fromLabels.cooldown_time_ms = lc;
  const policy = req?.policy ?? fromLabels.policy;
  if (policy === undefined) return null;
  return {
    policy,
    stateful: req?.stateful ?? fromLabels.stateful ?? false,
    cooldown_time_ms: req?.cooldown_time_ms ?? fromLabels.cooldown_time_ms ?? 1000,
    ...(req?.notify_time_ms !== undefined ? { notify_time_ms: req.notify_time_ms } : {}),
  };
}

export interface PlanContext {
  owner: string;
  now: number;
  image: ResolvedImage;
  pullPolicy: PullPolicy;
  /** True when the name is already used in the owner's account. */
  nameTaken(name: string): boolean;
  /** Bounded retries when a generated name collides. */
  maxNameAttempts?: number;
}

/** The records one create request makes (all `stopped`; autostart happens after insert). */
export function planInstances(req: CreateRequest, ctx: PlanContext): InstanceRecord[] {
  const count = (req.replicas ?? 0) + 1;
  const names: string[] = [];
  if (req.name !== undefined) {
    for (let i = 0; i < count; i++) {
      const name = i === 0 ? req.name : `${req.name}-${i}`;
      if (!INSTANCE_NAME.test(name)) throw new NodeError(Errno.EINVAL, `name ${name} is too long for a replica name`);
      if (ctx.nameTaken(name)) throw new NodeError(Errno.EEXIST, `an instance named ${name} already exists`);
      names.push(name);
    }
  } else {
    const base = imageBasename(ctx.image.digestRef);
    const attempts = ctx.maxNameAttempts ?? 16;
    for (let i = 0; i < count; i++) {
      let name: string | undefined;
      for (let a = 0; a < attempts && name === undefined; a++) {
        const candidate = `${base}-${randomSuffix()}`;
        if (!names.includes(candidate) && !ctx.nameTaken(candidate)) name = candidate;
      }
      if (name === undefined) throw new NodeError(Errno.EEXIST, 'could not find a free instance name');
      names.push(name);
    }
  }
  const config = ctx.image.config;
  const scaleToZero = req.service_group !== undefined ? scaleToZeroWithLabels(req.scale_to_zero, config) : null;
  return names.map((name) => ({
    uuid: randomUUID(),
    name,
    owner: ctx.owner,
    createdAt: ctx.now,
    state: 'stopped',
    privateFqdn: `${name}.internal`,
    privateIp: null,
    image: ctx.image.digestRef,
    imagePullPolicy: ctx.pullPolicy === 'always' ? 'if_not_present' : ctx.pullPolicy,
    memoryMb: req.memory_mb ?? 128,
    vcpus: req.vcpus ?? 1,
    args: req.args ?? config.Cmd ?? [],
    env: mergeEnv(config.Env, req.env),
    startCount: 0,
    restartCount: 0,
    startedAt: null,
    stoppedAt: null,
    bootTimeUs: null,
    netTimeUs: null,
    stopReason: null,
    exitCode: null,
    stopCode: null,
    restartPolicy: req.restart_policy ?? 'never',
    restart: { attempt: 0, next_at: null },
    scaleToZero,
    serviceGroup: (req.service_group as ServiceGroupRequest | undefined) ?? null,
    volumes: req.volumes ?? [],
    tags: req.tags ?? [],
    features: req.features ?? [],
    runtimeRef: null,
  }));
}
