/**
 * `ukcd node`: the node role — local registry (/v2), controller REST API v1
 * (/v1) and the `micro` instance runtime.
 *
 *   ukcd node --listen 127.0.0.1:PORT --central URL --home DIR [--allow-registry URL]...
 *             [--bridge ukcbr0] [--subnet 10.88.0.0/16] [--cgroup-parent /ukc-node]
 *             [--port-map 443=127.0.0.1:8443,80=127.0.0.1:8080] [--metro local] [--domain localhost]
 *             [--no-gateway]
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
import { parseArgs } from 'node:util';
import { UsageError, type Command, type CommandContext } from '../util/command.js';
import { parseListen } from '../registry/index.js';
import { startNodeServer } from '../node/server.js';
import { parsePortMap } from '../node/index.js';

async function run(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string', default: '127.0.0.1:7000' },
      central: { type: 'string' },
      'allow-registry': { type: 'string', multiple: true },
      home: { type: 'string' },
      bridge: { type: 'string' },
      subnet: { type: 'string' },
      'cgroup-parent': { type: 'string' },
      'port-map': { type: 'string' },
      metro: { type: 'string' },
      domain: { type: 'string' },
      'no-gateway': { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (!values.home) throw new UsageError('--home DIR is required');
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
  const allowed = values['allow-registry'] ?? [];
  for (const u of allowed) if (!/^https?:\/\/[^\s/]+\/?$/.test(u)) throw new UsageError('--allow-registry must be an http(s) base URL (scheme and host only)');
  const node = await startNodeServer({
    host: listen.host,
    port: listen.port,
    home: values.home,
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
            ...(values.metro ? { metro: values.metro } : {}),
            ...(values.domain ? { domain: values.domain } : {}),
            log: (m: string) => ctx.stderr.write(`${m}\n`),
          },
        }),
  });
  const r = node.api.recovery;
  // Status lines first, "listening" last: whoever waits for it has seen them all.
  if (node.api.tls) {
    const ports = node.api.gateway?.ports() ?? [];
    ctx.stdout.write(`gateway CA: ${node.api.tls.caCertPath}${ports.length > 0 ? ` (listening on public ports ${ports.join(', ')})` : ''}\n`);
  }
  ctx.stdout.write(`recovery: adopted ${r.adopted.length}, started ${r.started.length}, stopped ${r.stopped.length}, deleted ${r.deleted.length}, rearmed ${r.rearmed.length}\n`);
  ctx.stdout.write(`node listening on ${node.url}\n`);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await node.close();
  ctx.stdout.write('node stopped\n');
  return 0;
}

export const nodeCommand: Command = {
  name: 'node',
  summary: 'run a node: local registry, controller API v1 and the micro instance runtime',
  run,
};
