/**
 * `ukcd node`: the node role — local registry (/v2), controller REST API v1
 * (/v1) and the `micro` instance runtime.
 *
 *   ukcd node --listen 127.0.0.1:PORT --central URL --home DIR [--allow-registry URL]...
 *             [--bridge ukcbr0] [--subnet 10.88.0.0/16] [--cgroup-parent /ukc-node]
 *             [--port-map 443=127.0.0.1:8443,80=127.0.0.1:8080] [--metro local] [--domain localhost]
 *             [--no-gateway] [--tls-cert FILE --tls-key FILE] (--accounts-db PATH | --auth-url URL | --no-auth)
 *             [--config PATH] [--set KEY=VALUE]...
 *
 * Limits (API, instances, lifecycle, runtime, gateway, local registry, image cache) come from
 * the daemon's config (ukcd.yaml, UKC_<KEY>, --set; see config.ts and docs/configuration.md).
 *
 * Authentication (exactly one is required):
 *   --accounts-db PATH  the accounts database (shared with a control plane on this
 *                       machine, or the node's own); root's token is written to
 *                       `root-token` beside it when root has none;
 *   --auth-url URL      the control plane's base URL: tokens are checked by its
 *                       `GET /v1/auth` (valid answers cached for
 *                       --auth-cache-seconds, default 30; refusals for at most 1 s);
 *   --no-auth           no authentication at all (every request is the `local`
 *                       account, root-like). For tests and throwaway setups only.
 *
 * The gateway serves service groups on public ports. Without --port-map a
 * public port P is served on 0.0.0.0:P, opened when a service group first
 * uses it (creating the group fails with EBUSY if the port cannot be opened);
 * with --port-map the mapped ports are opened at start. Public names are
 * `<group>.<metro>.<domain>` (default `<group>.local.localhost`, which curl and
 * most resolvers send to loopback); the node's CA is printed at start.
 *
 * Stopping it (SIGINT/SIGTERM, or kill -9) leaves instances running; the next
 * start re-adopts them.
 */
import { dirname, join } from 'node:path';
import { AccountStore } from '../auth/index.js';
import type { NodeAuthOption } from '../node/index.js';
import { CONFIG_OPTIONS, parseOptions, type CommandHelp } from '../util/index.js';
import { UsageError, type Command, type CommandContext } from '../util/index.js';
import { parseListen } from '../registry/index.js';
import { startNodeServer } from '../node/index.js';
import { listenFailure } from './listen-errors.js';
import { parsePortMap } from '../node/index.js';
import { parsePublicUrl, TLS_OPTIONS, tlsFromOptions } from '../util/index.js';
import { LOG_OPTIONS, roleLogger } from '../log/index.js';
import { logLevelFlag, logLevelOf, nodeSettings, roleConfig, shutdownDeadlineOf } from './config.js';

export const NODE_HELP = {
  synopsis: '--home DIR (--accounts-db PATH | --auth-url URL | --no-auth) [--listen 127.0.0.1:7000] [--central URL] [options]',
  summary: 'run a node: local registry, controller API v1 and the micro instance runtime',
  options: {
    listen: { type: 'string', default: '127.0.0.1:7000', value: 'HOST:PORT', help: 'address of the node API and local registry' },
    central: { type: 'string', value: 'URL', help: 'the control plane (central registry) images are pulled from' },
    'allow-registry': { type: 'string', multiple: true, value: 'URL', help: 'another registry instance images may name (scheme and host); others are refused' },
    home: { type: 'string', value: 'DIR', help: "the node's data directory (required)" },
    bridge: { type: 'string', value: 'NAME', help: "the instances' network bridge" },
    subnet: { type: 'string', value: 'CIDR', help: "the instances' subnet" },
    'cgroup-parent': { type: 'string', value: 'PATH', help: 'cgroup under which instances run' },
    'port-map': { type: 'string', value: 'PUBLIC=HOST:PORT,...', help: 'serve public ports on other local addresses (opened at start)' },
    metro: { type: 'string', value: 'NAME', help: 'metro name in FQDNs (default local)' },
    domain: { type: 'string', value: 'DOMAIN', help: 'domain of FQDNs (default localhost)' },
    'no-gateway': { type: 'boolean', default: false, help: 'run without the gateway' },
    'accounts-db': { type: 'string', value: 'PATH', help: 'accounts database (shared with a control plane on this machine, or the node\'s own)' },
    'auth-url': { type: 'string', value: 'URL', help: "check tokens with this control plane's /v1/auth" },
    'auth-cache-seconds': { type: 'string', value: 'N', help: 'with --auth-url: how long a valid token is trusted (default 30)' },
    'no-auth': { type: 'boolean', default: false, help: 'NO authentication (tests and throwaway setups only)' },
    'public-url': { type: 'string', value: 'URL', help: 'the URL clients reach this node by: registry token realm and own registry host (default the listen address)' },
    'image-cache-mib': { type: 'string', value: 'MIB', help: 'most MiB the image cache keeps; unused pulled images are evicted least recently used first (default 20480)' },
    ...TLS_OPTIONS,
    ...LOG_OPTIONS,
    ...CONFIG_OPTIONS,
  },
} as const satisfies CommandHelp;

async function run(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseOptions('ukcd node', NODE_HELP, args);
  if (!values.home) throw new UsageError('--home DIR is required');
  const cacheText = values['auth-cache-seconds'];
  if (cacheText !== undefined && (values['auth-url'] === undefined || !/^\d{1,5}$/.test(cacheText))) {
    throw new UsageError('--auth-cache-seconds takes whole seconds and goes with --auth-url');
  }
  const config = roleConfig(values, ctx, [
    logLevelFlag(values['log-level']),
    { key: 'node_auth.positive_ttl', flag: '--auth-cache-seconds', value: cacheText !== undefined ? `${cacheText}s` : undefined },
    { key: 'images.cache_budget', flag: '--image-cache-mib', value: values['image-cache-mib'] !== undefined ? `${mebibytes(values['image-cache-mib'], '--image-cache-mib') / (1024 * 1024)}MiB` : undefined },
  ]);
  const settings = nodeSettings(config);
  const logger = roleLogger('node', logLevelOf(config), ctx.stderr);
  const authChoices = [values['accounts-db'] !== undefined, values['auth-url'] !== undefined, values['no-auth']].filter(Boolean).length;
  if (authChoices !== 1) throw new UsageError('choose exactly one of --accounts-db PATH, --auth-url URL or --no-auth');
  if (values['auth-url'] !== undefined && !/^https?:\/\/[^\s@]+$/.test(values['auth-url'])) throw new UsageError('--auth-url must be an http(s) URL without credentials');
  let listen;
  try {
    listen = parseListen(values.listen);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  let listenAddress;
  let alwaysOpen: number[] = [];
  if (values['port-map'] !== undefined) {
    try {
      listenAddress = parsePortMap(values['port-map']);
    } catch (err) {
      throw new UsageError(`--port-map: ${(err as Error).message}`);
    }
    alwaysOpen = values['port-map'].split(',').map((e) => Number(e.split('=')[0])).filter((n) => Number.isInteger(n) && n > 0);
  }
  const label = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
  if (values.metro !== undefined && !label.test(values.metro)) throw new UsageError('--metro must be a DNS label');
  if (values.domain !== undefined && !values.domain.split('.').every((l) => label.test(l))) throw new UsageError('--domain must be a DNS name');
  if (values.central !== undefined && !/^https?:\/\/[^\s]+$/.test(values.central)) throw new UsageError('--central must be an http(s) URL');
  let accounts: AccountStore | undefined;
  let auth: NodeAuthOption;
  if (values['accounts-db'] !== undefined) {
    const dbPath = values['accounts-db'];
    accounts = new AccountStore({ path: dbPath });
    const rootTokenFile = join(dirname(dbPath), 'root-token');
    if (accounts.ensureRootAccount(rootTokenFile).tokenWritten) ctx.stdout.write(`root token written to ${rootTokenFile}\n`);
    auth = { mode: 'accounts', accounts };
  } else if (values['auth-url'] !== undefined) {
    auth = { mode: 'controlplane', authUrl: values['auth-url'], ...settings.tokenCache };
  } else {
    ctx.stderr.write(
      '\n*** WARNING: ukcd node --no-auth: NO AUTHENTICATION. Anyone who can reach this port can run,\n' +
        '*** read and delete every instance and image. Use it for tests and throwaway setups only. ***\n\n',
    );
    auth = { mode: 'none' };
  }
  const tls = tlsFromOptions(values);
  const publicUrl = values['public-url'] !== undefined ? parsePublicUrl(values['public-url']) : undefined;
  const allowed = values['allow-registry'] ?? [];
  for (const u of allowed) if (!/^https?:\/\/[^\s/]+\/?$/.test(u)) throw new UsageError('--allow-registry must be an http(s) base URL (scheme and host only)');
  const node = await startNodeServer({
    auth,
    logger,
    host: listen.host,
    port: listen.port,
    home: values.home,
    ...settings.server,
    ...(tls ? { tls } : {}),
    ...(publicUrl !== undefined ? { publicUrl } : {}),
    ...(values.central ? { centralUrl: values.central } : {}),
    ...(allowed.length > 0 ? { allowedRegistries: allowed } : {}),
    ...(values.bridge ? { bridge: values.bridge } : {}),
    ...(values.subnet ? { subnet: values.subnet } : {}),
    ...(values['cgroup-parent'] ? { cgroupParent: values['cgroup-parent'] } : {}),
    ...(values['no-gateway']
      ? {}
      : {
          gateway: {
            ...(listenAddress ? { listenAddress } : {}),
            alwaysOpen,
            limits: settings.gatewayLimits,
            ...(values.metro ? { metro: values.metro } : {}),
            ...(values.domain ? { domain: values.domain } : {}),
            log: (m: string) => logger.warn(m),
          },
        }),
  }).catch((err: unknown) => {
    throw listenFailure(err, { api: '--listen', gateway: 'map the public port elsewhere with --port-map PORT=HOST:PORT, or run with --no-gateway' });
  });
  const r = node.api.recovery;
  // Status lines first, "listening" last: whoever waits for it has seen them all.
  if (node.api.tls) {
    const ports = node.api.gateway?.ports() ?? [];
    ctx.stdout.write(`gateway CA: ${node.api.tls.caCertPath}${ports.length > 0 ? ` (listening on public ports ${ports.join(', ')})` : ''}\n`);
  }
  ctx.stdout.write(`recovery: adopted ${r.adopted.length}, started ${r.started.length}, stopped ${r.stopped.length}, deleted ${r.deleted.length}, rearmed ${r.rearmed.length}${r.swept ? `; swept ${r.swept.cgroups} cgroups, ${r.swept.networks} networks, ${r.swept.runDirs} run dirs of dead runs` : ''}\n`);
  ctx.stdout.write(`node listening on ${node.url}\n`);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  const deadlineMs = shutdownDeadlineOf(config);
  ctx.stdout.write(`node draining (up to ${deadlineMs / 1000} s for requests in flight)\n`);
  await node.close({ deadlineMs });
  accounts?.close();
  ctx.stdout.write('node stopped\n');
  return 0;
}

export const nodeCommand: Command = {
  name: 'node',
  summary: NODE_HELP.summary,
  help: NODE_HELP,
  run,
};

/** A whole, positive number of MiB, in bytes. */
function mebibytes(text: string, flag: string): number {
  if (!/^[1-9][0-9]{0,9}$/.test(text)) throw new UsageError(`${flag}: expected a positive whole number of MiB, got "${text}"`);
  return Number(text) * 1024 * 1024;
}
