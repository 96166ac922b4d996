/**
 * `ukcd registry`: serve the OCI registry, or collect its garbage.
 *
 *   ukcd registry [--listen 127.0.0.1:5000] --data DIR [--no-delete] [--tls-cert FILE --tls-key FILE]
 *                 [--auth [--accounts-db PATH] [--root-token-file PATH] [--public-url URL] [--anonymous-pull-official]]
 *   ukcd registry gc --data DIR [--dry-run] [--grace-period 1h]
 */
import { parseOptions, type CommandHelp } from '../util/index.js';
import { UsageError, type Command, type CommandContext } from '../util/index.js';
import { collectGarbage, DEFAULT_GC_GRACE_PERIOD_MS } from './gc.js';
import { openStores, parseListen, startRegistryServer } from './server.js';
import { ACCOUNTS_DB_FILE, createRegistryAuth, ROOT_TOKEN_FILE, type RegistryAuth } from './token-auth.js';
import { join } from 'node:path';
import { CONFIG_OPTIONS, DEFAULT_SHUTDOWN_DEADLINE_MS, TLS_OPTIONS, tlsFromOptions, type ListenerTimeouts } from '../util/index.js';
import { LOG_OPTIONS, logLevelOf, roleLogger } from '../log/index.js';
import { rootTokenAccess } from '../metrics/index.js';
import type { RegistryLimits } from './options.js';

/**
 * What the daemon's config (src/config: ukcd.yaml, UKC_<KEY>, --set) gives this role; flags
 * given to the command itself still win. `--config` and `--set` are read by the daemon
 * before the command runs (`ukcd` wraps it); the tables below list them for the help.
 */
export interface RegistryRoleSettings {
  limits?: Partial<RegistryLimits>;
  /** Socket inactivity timeout of the listener (ms). */
  idleTimeoutMs?: number;
  /** Header and keep-alive timeouts of the listener. */
  listenerTimeouts?: ListenerTimeouts;
  /** `gc`: default grace period (ms). */
  gcGracePeriodMs?: number;
  /** Default log level. */
  logLevel?: string;
  /** With `--auth`: lifetime of issued tokens (s) and per-principal request rate. */
  tokenTtlSeconds?: number;
  rateLimit?: { ratePerSecond: number; burst: number };
  /** SIGTERM: how long requests in flight may finish (ms). */
  shutdownDeadlineMs?: number;
}

/** Parses `90s`, `15m`, `1h`, `2d` or plain milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,12})(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid duration "${text}": use e.g. 90s, 15m, 1h, 2d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

const SERVE_OPTIONS = {
  listen: { type: 'string', default: '127.0.0.1:5000', value: 'HOST:PORT', help: 'address to listen on' },
  data: { type: 'string', value: 'DIR', help: 'data directory (required)' },
  'no-delete': { type: 'boolean', default: false, help: 'refuse DELETE requests' },
  'upload-timeout': { type: 'string', value: 'DURATION', help: 'drop upload sessions idle this long (e.g. 15m)' },
  auth: { type: 'boolean', default: false, help: 'require tokens (accounts database, token endpoint)' },
  'accounts-db': { type: 'string', value: 'PATH', help: 'accounts database (with --auth; default DIR/accounts.db)' },
  'root-token-file': { type: 'string', value: 'PATH', help: 'where the root token is written on first start (with --auth)' },
  'public-url': { type: 'string', value: 'URL', help: 'the URL clients reach the registry by, for the token realm (with --auth)' },
  'anonymous-pull-official': { type: 'boolean', default: false, help: 'let requests without a token pull official/* (with --auth)' },
  ...TLS_OPTIONS,
  ...LOG_OPTIONS,
  ...CONFIG_OPTIONS,
} as const;

const SERVE_HELP = {
  synopsis: '[serve] --data DIR [--listen 127.0.0.1:5000] [--no-delete] [--tls-cert FILE --tls-key FILE] [--auth [--accounts-db PATH] [--root-token-file PATH] [--public-url URL] [--anonymous-pull-official]]',
  summary: 'serve the OCI registry',
  options: SERVE_OPTIONS,
} as const satisfies CommandHelp;

const GC_HELP = {
  synopsis: '--data DIR [--dry-run] [--grace-period 1h]',
  summary: 'delete blobs no manifest references (safe beside a running registry: uploads in flight are never touched)',
  options: {
    data: { type: 'string', value: 'DIR', help: 'data directory (required)' },
    'dry-run': { type: 'boolean', default: false, help: 'only print what would be deleted' },
    'grace-period': { type: 'string', value: 'DURATION', help: 'keep blobs younger than this (default 1h)' },
    ...CONFIG_OPTIONS,
  },
} as const satisfies CommandHelp;

export const REGISTRY_HELP = {
  ...SERVE_HELP,
  synopsis: [SERVE_HELP.synopsis, `gc ${GC_HELP.synopsis}`],
  summary: 'serve the OCI registry, or collect its garbage',
  subcommands: { serve: SERVE_HELP, gc: GC_HELP },
} as const satisfies CommandHelp;

async function serve(args: string[], ctx: CommandContext, settings: RegistryRoleSettings): Promise<number> {
  const { values } = parseOptions('ukcd registry', SERVE_HELP, args);
  if (!values.data) throw new UsageError('--data DIR is required');
  const authOnly = ['accounts-db', 'root-token-file', 'public-url', 'anonymous-pull-official'] as const;
  for (const name of authOnly) {
    if (!values.auth && values[name] !== undefined && values[name] !== false) throw new UsageError(`--${name} needs --auth`);
  }
  if (values['public-url'] !== undefined && !/^https?:\/\/[^\s]+$/.test(values['public-url'])) {
    throw new UsageError('--public-url must be an http(s) URL');
  }
  let listen;
  try {
    listen = parseListen(values.listen);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const tls = tlsFromOptions(values);
  const logger = roleLogger('registry', values['log-level'] ?? settings.logLevel ?? logLevelOf(undefined, ctx.env), ctx.stderr);
  const limits = { ...settings.limits, ...(values['upload-timeout'] ? { uploadSessionTimeoutMs: parseDuration(values['upload-timeout']) } : {}) };
  const dataDir = values.data;
  let auth: RegistryAuth | undefined;
  const srv = await startRegistryServer({
    listen,
    dataDir,
    ...(tls ? { tls } : {}),
    ...(values.auth
      ? {
          accessFor: (serverUrl: string) => {
            auth = createRegistryAuth({
              publicUrl: values['public-url'] ?? serverUrl,
              dataDir,
              accountsDbPath: values['accounts-db'] ?? join(dataDir, ACCOUNTS_DB_FILE),
              rootTokenFile: values['root-token-file'] ?? join(dataDir, ROOT_TOKEN_FILE),
              anonymousPullOfficial: values['anonymous-pull-official'],
              ...(settings.tokenTtlSeconds !== undefined ? { tokenTtlSeconds: settings.tokenTtlSeconds } : {}),
              ...(settings.rateLimit !== undefined ? { rateLimit: settings.rateLimit } : {}),
            });
            return auth;
          },
        }
      : {}),
    // /metrics: root's API token with --auth (the accounts exist once the access control is built), else open.
    metricsAccess: values.auth ? (headers) => (auth ? rootTokenAccess(auth.accounts)(headers) : 'unauthenticated') : undefined,
    deleteEnabled: !values['no-delete'],
    limits,
    ...(settings.idleTimeoutMs !== undefined ? { idleTimeoutMs: settings.idleTimeoutMs } : {}),
    ...(settings.listenerTimeouts ? { listenerTimeouts: settings.listenerTimeouts } : {}),
    logger,
  });
  ctx.stdout.write(`registry listening on ${srv.url}\n`);
  if (auth) {
    ctx.stdout.write(`auth on: token endpoint ${auth.realm}, service ${auth.service}\n`);
    ctx.stdout.write(`root token ${auth.rootTokenWritten ? 'written to' : 'kept in'} ${auth.rootTokenFile ?? '-'} (mode 0600)\n`);
  }
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const deadlineMs = settings.shutdownDeadlineMs ?? DEFAULT_SHUTDOWN_DEADLINE_MS;
  ctx.stdout.write(`registry draining (up to ${deadlineMs / 1000} s for requests in flight)\n`);
  await srv.close({ deadlineMs });
  auth?.close();
  ctx.stdout.write('registry stopped\n');
  return 0;
}

async function gc(args: string[], ctx: CommandContext, settings: RegistryRoleSettings): Promise<number> {
  const { values } = parseOptions('ukcd registry gc', GC_HELP, args);
  if (!values.data) throw new UsageError('--data DIR is required');
  const grace = values['grace-period'] ? parseDuration(values['grace-period']) : (settings.gcGracePeriodMs ?? DEFAULT_GC_GRACE_PERIOD_MS);
  const { blobs, metadata } = openStores(values.data, { serving: false });
  try {
    const dryRun = values['dry-run'];
    const report = await collectGarbage({ blobs, metadata, gracePeriodMs: grace, dryRun });
    for (const d of report.swept) ctx.stdout.write(`${dryRun ? 'would delete' : 'deleted'} ${d}\n`);
    ctx.stdout.write(
      `marked ${report.marked}, ${dryRun ? 'would sweep' : 'swept'} ${report.swept.length} blobs (${report.bytesFreed} bytes), kept ${report.keptInGrace} within the grace period\n`,
    );
    return 0;
  } finally {
    await metadata.close();
  }
}

/** The `registry` command with the daemon config's values for this start. */
export function registryCommandWith(settings: RegistryRoleSettings): Command {
  return {
    name: 'registry',
    summary: 'serve the OCI registry (--listen, --data, --auth), or `registry gc --data DIR [--dry-run] [--grace-period 1h]`',
    help: REGISTRY_HELP,
    async run(args, ctx) {
      if (args[0] === 'gc') return gc(args.slice(1), ctx, settings);
      if (args[0] === 'serve') return serve(args.slice(1), ctx, settings);
      return serve(args, ctx, settings);
    },
  };
}

/** The command with every setting at its default (the daemon wraps it with its config). */
export const registryCommand: Command = registryCommandWith({});
