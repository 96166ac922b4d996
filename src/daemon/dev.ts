/**
 * `ukcd dev [--home DIR] [--host 127.0.0.1] [--controlplane-port 0] [--node-port 0]
 *           [--gateway-port-offset N] [--metro dev] [--no-gateway] [--central-access-log FILE]
 *           [--config PATH] [--set KEY=VALUE]...`
 *
 * The whole platform on one machine in one process: the control plane with the
 * central registry, and one node (local registry, API, micro runtime, network,
 * gateway). The node's API and local registry use the control plane's accounts:
 * every request carries an API token (the CLI profile's). Data lives under one directory (UKC_HOME, default
 * ~/.local/share/ukc):
 *   controlplane/   central registry, accounts, nodes
 *   node/           the node's local registry, instances, rootfs cache, TLS
 * At start it publishes the official runtimes (to the central registry, and
 * into the node's local registry so builds pushed there resolve runtimes
 * locally), registers the node, creates the `dev` account, writes the CLI
 * profile `dev` (UNIKRAFT_CONFIG, default ~/.config/unikraft/config.yaml) and
 * prints the addresses. Ctrl-C stops everything cleanly.
 */
import { join } from 'node:path';
import { appendFileSync, readFileSync } from 'node:fs';
import type { RequestLogEntry } from '../registry/index.js';
import { CONFIG_OPTIONS, parseOptions, type CommandHelp } from '../util/index.js';
import { UsageError, type Command, type CommandContext } from '../util/index.js';
import { startControlPlane } from '../controlplane/index.js';
import { startNodeServer } from '../node/index.js';
import { listenFailure } from './listen-errors.js';
import { RegistryClient } from '../client/index.js';
import { PlatformClient } from '../client/index.js';
import { publishOfficialRuntimes } from '../builder/index.js';
import { configPath, loadConfig, saveConfig } from '../cli/index.js';
import { LOG_OPTIONS, roleLogger } from '../log/index.js';
import { DEV_HEARTBEAT_INTERVAL } from '../config/index.js';
import { controlPlaneSettings, logLevelFlag, logLevelOf, nodeSettings, roleConfig, shutdownDeadlineOf } from './config.js';
import { ukcHome } from './home.js';
import { lockHome } from './home-lock.js';

export const DEV_ACCOUNT = 'dev';
export { ukcHome };

function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d{1,5}$/.test(text) || n > 65535) throw new UsageError(`${what} must be a port number`);
  return n;
}

export const DEV_HELP = {
  synopsis: '[--home DIR] [--host 127.0.0.1] [--controlplane-port 0] [--node-port 0] [--gateway-port-offset 8000] [--metro dev] [--no-gateway]',
  summary: 'run the whole platform on this machine (control plane + one node + gateway) and write a CLI profile',
  options: {
    home: { type: 'string', value: 'DIR', help: 'data directory (default UKC_HOME, else ~/.local/share/ukc)' },
    host: { type: 'string', default: '127.0.0.1', value: 'ADDR', help: 'address every listener binds' },
    'controlplane-port': { type: 'string', default: '0', value: 'PORT', help: 'control plane and central registry port (0 = any free)' },
    'node-port': { type: 'string', default: '0', value: 'PORT', help: 'node API and local registry port (0 = any free)' },
    'gateway-port-offset': { type: 'string', default: '8000', value: 'N', help: 'public port P is served on P+N (443 → 8443)' },
    metro: { type: 'string', default: 'dev', value: 'NAME', help: 'metro name (FQDNs are *.NAME.localhost)' },
    'no-gateway': { type: 'boolean', default: false, help: 'run without the HTTPS gateway' },
    bridge: { type: 'string', value: 'NAME', help: "the instances' network bridge" },
    subnet: { type: 'string', value: 'CIDR', help: "the instances' subnet" },
    'central-access-log': { type: 'string', value: 'FILE', help: 'append one JSON line per central registry request' },
    'cgroup-parent': { type: 'string', value: 'PATH', help: "cgroup under which instances run" },
    ...LOG_OPTIONS,
    ...CONFIG_OPTIONS,
  },
  notes: 'environment: UKC_HOME, UNIKRAFT_CONFIG (where the CLI profile `dev` is written). Ctrl-C stops everything.',
} as const satisfies CommandHelp;

async function run(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseOptions('ukcd dev', DEV_HELP, args);
  const home = values.home ?? ukcHome(ctx.env);
  const daemonConfig = roleConfig(values, ctx, [logLevelFlag(values['log-level'])], home);
  const nodeConfig = nodeSettings(daemonConfig);
  const host = values.host;
  const offset = port(values['gateway-port-offset'], '--gateway-port-offset');
  const say = (line: string): void => void ctx.stdout.write(`${line}\n`);
  // One logger per role (the `role` field tells their lines apart on the one stderr).
  const level = logLevelOf(daemonConfig);
  const cpLogger = roleLogger('controlplane', level, ctx.stderr);
  const nodeLogger = roleLogger('node', level, ctx.stderr);
  const logError = (err: unknown): void => void nodeLogger.error({ err }, 'heartbeat failed');

  const accessLog = values['central-access-log'];
  const unlock = lockHome(home, 'dev');
  let cp: Awaited<ReturnType<typeof startControlPlane>>;
  try {
    cp = await startControlPlane({
    dataDir: join(home, 'controlplane'),
    host,
    port: port(values['controlplane-port'], '--controlplane-port'),
    logger: cpLogger,
    ...controlPlaneSettings(daemonConfig),
    // One JSON line per central registry request (operators' access log; tests count them).
    ...(accessLog ? { onRegistryRequest: (entry: RequestLogEntry) => appendFileSync(accessLog, `${JSON.stringify(entry)}\n`) } : {}),
    });
  } catch (err) {
    unlock();
    throw listenFailure(err, { api: '--controlplane-port' });
  }
  let node: Awaited<ReturnType<typeof startNodeServer>> | undefined;
  let heartbeat: NodeJS.Timeout | undefined;
  try {
    const rootToken = readFileSync(cp.rootTokenFile, 'utf8').trim();
    const central = new RegistryClient({ baseUrl: cp.url, credentials: { token: rootToken } });
    try {
      for (const r of await publishOfficialRuntimes(central)) say(`published ${cp.registryHost}/${r.repository}:${r.tag}@${r.digest}`);
    } finally {
      central.close();
    }

    node = await startNodeServer({
      host,
      port: port(values['node-port'], '--node-port'),
      home: join(home, 'node'),
      logger: nodeLogger,
      ...nodeConfig.server,
      centralUrl: cp.url,
      // The node checks tokens against the control plane's own accounts (same process, same store).
      auth: { mode: 'accounts', accounts: cp.accounts },
      ...(values.bridge ? { bridge: values.bridge } : {}),
      ...(values.subnet ? { subnet: values.subnet } : {}),
      ...(values['cgroup-parent'] ? { cgroupParent: values['cgroup-parent'] } : {}),
      ...(values['no-gateway']
        ? {}
        : {
            gateway: {
              metro: values.metro,
              domain: 'localhost',
              listenAddress: (p: number) => ({ host, port: p + offset }),
              limits: nodeConfig.gatewayLimits,
              log: (m: string) => void nodeLogger.warn(m),
            },
          }),
    }).catch((err: unknown) => {
      // The gateway serves public port P on P + offset; the node API has its own port.
      throw listenFailure(err, { api: '--node-port', gateway: `move the gateway with --gateway-port-offset (now ${offset}) or run with --no-gateway` });
    });
    const nodeHost = new URL(node.url).host;
    const local = new RegistryClient({ baseUrl: node.url, credentials: { token: rootToken } });
    try {
      await publishOfficialRuntimes(local);
    } finally {
      local.close();
    }

    const rootApi = new PlatformClient({ baseUrl: cp.url, token: rootToken });
    const [registered] = await rootApi.registerNode({ name: 'node1', metro: values.metro, api: node.url, registry: nodeHost });
    const nodeUrl = node.url;
    heartbeat = setInterval(() => {
      new PlatformClient({ baseUrl: nodeUrl })
        .healthz()
        .then(() => true, () => false)
        .then((healthy) => rootApi.reportNodeHealth(registered!.uuid, { healthy }))
        .catch(logError);
    }, daemonConfig.number(DEV_HEARTBEAT_INTERVAL.key));
    heartbeat.unref();

    // The CLI profile: the dev account and a token (kept while it still authenticates).
    if (!cp.accounts.getAccount(DEV_ACCOUNT)) cp.accounts.createAccount(DEV_ACCOUNT);
    const cfgPath = configPath(ctx.env);
    const config = loadConfig(cfgPath);
    const previous = config.profiles.dev?.token;
    const token = previous !== undefined && cp.accounts.authenticateToken(previous)?.account.name === DEV_ACCOUNT ? previous : cp.accounts.createToken(DEV_ACCOUNT, { label: 'ukcd dev profile' }).text;
    config.profiles.dev = {
      token,
      account: DEV_ACCOUNT,
      controlplane: cp.url,
      registry: cp.registryHost,
      metro: values.metro,
      metros: { [values.metro]: { api: node.url, registry: nodeHost } },
    };
    config.currentProfile = 'dev';
    saveConfig(cfgPath, config);

    say(`control plane  ${cp.url}   (central registry ${cp.registryHost})`);
    say(`node ${values.metro}       ${node.url}   (local registry ${nodeHost})`);
    if (node.api.gateway) say(`gateway        https://${host}:${443 + offset}  http://${host}:${80 + offset}  (public port p is served on p+${offset}; FQDNs *.${values.metro}.localhost)`);
    if (node.api.tls) say(`gateway CA     ${node.api.tls.caCertPath}  (curl --cacert it)`);
    say(`data           ${home}`);
    say(`cli profile    dev in ${cfgPath} (account ${DEV_ACCOUNT}); try: unikraft run --image <name> or unikraft run <dir>`);
    say('ready');

    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    say('stopping');
    return 0;
  } finally {
    if (heartbeat) clearInterval(heartbeat);
    // Both drain at once (SIGTERM): requests in flight on either finish within the one deadline.
    const deadlineMs = shutdownDeadlineOf(daemonConfig);
    await Promise.all([node?.close({ deadlineMs }), cp.close({ deadlineMs })]);
    unlock();
    say('stopped');
  }
}

export const devCommand: Command = {
  name: 'dev',
  summary: DEV_HELP.summary,
  help: DEV_HELP,
  run,
};
