/**
 * The daemon's config (src/config) in its roles: each role loads it once at start
 * (`--config`, `--set`, UKC_<KEY>, its own flags) and hands the values to the parts it
 * builds, here, in one place per role. And `ukcd config print|docs`.
 */
import type { NodeServerOptions } from '../node/index.js';
import type { ControlPlaneOptions } from '../controlplane/index.js';
import { REGISTRY_HELP, registryCommandWith, type RegistryRoleSettings } from '../registry/index.js';
import {
  CERTIFICATES,
  CONTROLPLANE_LIMITS,
  CONTROLPLANE_RATE,
  formatEffectiveConfig,
  GATEWAY,
  GC_GRACE_PERIOD,
  IMAGE_CACHE_BYTES,
  SHUTDOWN_DEADLINE,
  IMAGES,
  INSTANCES,
  LIFECYCLE,
  LEASE_LOG_MAX_LINES,
  LISTENER_HEADERS_TIMEOUT,
  LISTENER_IDLE_TIMEOUT,
  LISTENER_KEEP_ALIVE_TIMEOUT,
  loadDaemonConfig,
  LOG_LEVEL,
  NETNS_POOL_SIZE,
  NODE_API,
  NODE_AUTH,
  NODE_RATE,
  REGISTRY,
  REGISTRY_RATE,
  REGISTRY_TOKEN_TTL,
  ROLES,
  RUNTIME,
  RUNTIME_USER_NAMESPACES,
  SERVICES,
  settingsMarkdown,
  type DaemonConfig,
  type Role,
} from '../config/index.js';
import { CONFIG_OPTIONS, parseOptions, UsageError, type Command, type CommandContext, type CommandHelp, type ListenerTimeouts } from '../util/index.js';
import { ukcHome } from './home.js';

/** A role's own flag that sets a setting: its name and its text (undefined when not given). */
export interface FlagSetting {
  key: string;
  flag: string;
  value: string | undefined;
}

/** Loads the config of a role's start: `values` are its parsed options (with CONFIG_OPTIONS). */
export function roleConfig(values: { config?: string | undefined; set?: string[] | undefined }, ctx: CommandContext, flags: readonly FlagSetting[] = [], home?: string): DaemonConfig {
  return loadDaemonConfig({
    ...(values.config !== undefined ? { configPath: values.config } : {}),
    home: home ?? ukcHome(ctx.env),
    env: ctx.env,
    sets: values.set ?? [],
    flags,
  });
}

/** `--log-level` of every role. */
export function logLevelFlag(value: string | undefined): FlagSetting {
  return { key: LOG_LEVEL.key, flag: '--log-level', value };
}

export function logLevelOf(config: DaemonConfig): string {
  return config.string(LOG_LEVEL.key);
}

export function idleTimeoutOf(config: DaemonConfig): number {
  return config.number(LISTENER_IDLE_TIMEOUT.key);
}

export function listenerTimeoutsOf(config: DaemonConfig): ListenerTimeouts {
  return { headersTimeoutMs: config.number(LISTENER_HEADERS_TIMEOUT.key), keepAliveTimeoutMs: config.number(LISTENER_KEEP_ALIVE_TIMEOUT.key) };
}

/** Everything of a node's start that comes from the config. */
export function nodeSettings(config: DaemonConfig): {
  /** Spread into startNodeServer's options. */
  server: Pick<NodeServerOptions, 'limits' | 'runtimeLimits' | 'registryLimits' | 'imageLimits' | 'idleTimeoutMs' | 'listenerTimeouts' | 'netnsPoolSize' | 'imageCacheBytes' | 'leaseLogMaxLines' | 'registryAuth' | 'rateLimit'>;
  /** The gateway's `limits` (gateway, service groups, certificates). */
  gatewayLimits: NonNullable<NonNullable<NodeServerOptions['gateway']>['limits']>;
  /** With `--auth-url`: the token cache of the control plane verifier. */
  tokenCache: ReturnType<typeof NODE_AUTH.pick>;
} {
  const v = config.valueOf;
  return {
    server: {
      limits: { ...INSTANCES.pick(v), ...LIFECYCLE.pick(v), ...NODE_API.pick(v) },
      runtimeLimits: { ...RUNTIME.pick(v), userNamespaces: config.string(RUNTIME_USER_NAMESPACES.key) === 'on' },
      registryLimits: REGISTRY.pick(v),
      imageLimits: IMAGES.pick(v),
      idleTimeoutMs: idleTimeoutOf(config),
      listenerTimeouts: listenerTimeoutsOf(config),
      netnsPoolSize: config.number(NETNS_POOL_SIZE.key),
      imageCacheBytes: config.number(IMAGE_CACHE_BYTES.key),
      leaseLogMaxLines: config.number(LEASE_LOG_MAX_LINES.key),
      registryAuth: { tokenTtlSeconds: config.number(REGISTRY_TOKEN_TTL.key), rateLimit: REGISTRY_RATE.pick(v) },
      rateLimit: NODE_RATE.pick(v),
    },
    gatewayLimits: { ...GATEWAY.pick(v), ...SERVICES.pick(v), ...CERTIFICATES.pick(v) },
    tokenCache: NODE_AUTH.pick(v),
  };
}

/** Everything of a control plane's start that comes from the config. */
export function controlPlaneSettings(config: DaemonConfig): Pick<ControlPlaneOptions, 'limits' | 'registryLimits' | 'registryTokenTtlSeconds' | 'idleTimeoutMs' | 'listenerTimeouts' | 'rateLimit'> {
  const v = config.valueOf;
  return {
    limits: CONTROLPLANE_LIMITS.pick(v),
    registryLimits: REGISTRY.pick(v),
    registryTokenTtlSeconds: config.number(REGISTRY_TOKEN_TTL.key),
    idleTimeoutMs: idleTimeoutOf(config),
    listenerTimeouts: listenerTimeoutsOf(config),
    rateLimit: CONTROLPLANE_RATE.pick(v),
  };
}

export function registrySettings(config: DaemonConfig): RegistryRoleSettings {
  return {
    limits: REGISTRY.pick(config.valueOf),
    idleTimeoutMs: idleTimeoutOf(config),
    listenerTimeouts: listenerTimeoutsOf(config),
    gcGracePeriodMs: config.number(GC_GRACE_PERIOD.key),
    logLevel: logLevelOf(config),
    tokenTtlSeconds: config.number(REGISTRY_TOKEN_TTL.key),
    rateLimit: REGISTRY_RATE.pick(config.valueOf),
    shutdownDeadlineMs: shutdownDeadlineOf(config),
  };
}

/** How long a SIGTERM lets requests in flight finish (every role). */
export function shutdownDeadlineOf(config: DaemonConfig): number {
  return config.number(SHUTDOWN_DEADLINE.key);
}

/**
 * `ukcd registry`: the registry's own command, given this start's config. The flags that
 * are settings too (`--upload-timeout`, `--grace-period`, `--log-level`) count as flags.
 */
export const daemonRegistryCommand: Command = {
  name: 'registry',
  summary: registryCommandWith({}).summary,
  help: REGISTRY_HELP,
  async run(args, ctx) {
    const sub = args[0] === 'gc' || args[0] === 'serve' ? args[0] : undefined;
    const rest = sub ? args.slice(1) : args;
    let config: DaemonConfig;
    if (sub === 'gc') {
      const { values } = parseOptions('ukcd registry gc', REGISTRY_HELP.subcommands.gc, rest);
      config = roleConfig(values, ctx, [{ key: GC_GRACE_PERIOD.key, flag: '--grace-period', value: values['grace-period'] }]);
    } else {
      const { values } = parseOptions('ukcd registry', REGISTRY_HELP.subcommands.serve, rest);
      config = roleConfig(values, ctx, [logLevelFlag(values['log-level']), { key: 'registry.upload_session_timeout', flag: '--upload-timeout', value: values['upload-timeout'] }]);
    }
    return registryCommandWith(registrySettings(config)).run(args, ctx);
  },
};

const PRINT_HELP = {
  synopsis: '[--config PATH] [--set KEY=VALUE]... [--role dev|controlplane|node|registry] [--home DIR]',
  summary: 'print every setting with its effective value and where it comes from (default, file, env, flag)',
  options: {
    ...CONFIG_OPTIONS,
    role: { type: 'string', value: 'ROLE', help: 'only the settings this role reads' },
    home: { type: 'string', value: 'DIR', help: 'the home whose ukcd.yaml is read (default UKC_HOME, else ~/.local/share/ukc)' },
  },
} as const satisfies CommandHelp;

const DOCS_HELP = {
  synopsis: '',
  summary: 'print the settings table as markdown (docs/configuration.md)',
  options: {},
} as const satisfies CommandHelp;

export const CONFIG_HELP = {
  synopsis: ['print [--config PATH] [--set KEY=VALUE]... [--role ROLE]', 'docs'],
  summary: 'show the effective configuration (ukcd.yaml, UKC_<KEY>, --set) or the table of settings',
  subcommands: { print: PRINT_HELP, docs: DOCS_HELP },
} as const satisfies CommandHelp;

export const configCommand: Command = {
  name: 'config',
  summary: CONFIG_HELP.summary,
  help: CONFIG_HELP,
  async run(args, ctx) {
    const [sub, ...rest] = args;
    if (sub === 'docs') {
      parseOptions('ukcd config docs', DOCS_HELP, rest);
      ctx.stdout.write(settingsMarkdown());
      return 0;
    }
    if (sub === 'print') {
      const { values } = parseOptions('ukcd config print', PRINT_HELP, rest);
      const role = values.role;
      if (role !== undefined && !ROLES.includes(role as Role)) throw new UsageError(`--role must be one of ${ROLES.join(', ')}`);
      const config = roleConfig(values, ctx, [], values.home);
      ctx.stdout.write(formatEffectiveConfig(config, role as Role | undefined));
      return 0;
    }
    throw new UsageError(`want a subcommand: print or docs\nusage: ukcd config ${CONFIG_HELP.synopsis.join(' | ')}`);
  },
};
