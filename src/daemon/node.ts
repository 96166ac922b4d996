/**
 * `ukcd node`: the node role — local registry (/v2), controller REST API v1
 * (/v1) and the `micro` instance runtime.
 *
 *   ukcd node --listen 127.0.0.1:PORT --central URL --home DIR
 *             [--bridge ukcbr0] [--subnet 10.88.0.0/16] [--cgroup-parent /ukc-node]
 *
 * Stopping it (SIGINT/SIGTERM, or kill -9) leaves instances running; the next
 * start re-adopts them.
 */
import { parseArgs } from 'node:util';
import { UsageError, type Command, type CommandContext } from '../util/command.js';
import { parseListen } from '../registry/index.js';
import { startNodeServer } from '../node/server.js';

async function run(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string', default: '127.0.0.1:7000' },
      central: { type: 'string' },
      home: { type: 'string' },
      bridge: { type: 'string' },
      subnet: { type: 'string' },
      'cgroup-parent': { type: 'string' },
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
  if (values.central !== undefined && !/^https?:\/\/[^\s]+$/.test(values.central)) throw new UsageError('--central must be an http(s) URL');
  const node = await startNodeServer({
    host: listen.host,
    port: listen.port,
    home: values.home,
    ...(values.central ? { centralUrl: values.central } : {}),
    ...(values.bridge ? { bridge: values.bridge } : {}),
    ...(values.subnet ? { subnet: values.subnet } : {}),
    ...(values['cgroup-parent'] ? { cgroupParent: values['cgroup-parent'] } : {}),
  });
  const r = node.api.recovery;
  ctx.stdout.write(`node listening on ${node.url}\n`);
  ctx.stdout.write(`recovery: adopted ${r.adopted.length}, started ${r.started.length}, stopped ${r.stopped.length}, deleted ${r.deleted.length}, rearmed ${r.rearmed.length}\n`);
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
