/**
 * `unikraft instances list|get|logs|start|stop|restart|delete|wait` against
 * the selected metro's node API. Names or UUIDs select instances.
 */
import { UsageError } from '../../../util/command.js';
import { selectorOf, type Instance, type PlatformClient, type Selector } from '../../../client/platform.js';
import { changesView, instancesView } from '../../views.js';
import { nodeApi, parseCommand, parseTimeout, print, type CliRuntime } from '../../runtime.js';
import type { CliCommand } from '../../command.js';

const USAGE = 'unikraft instances list | get NAME... | logs NAME... [--follow] [--tail BYTES] | start|stop|restart|delete NAME... | wait NAME... [--state running] [--timeout 60s]';

function selectors(names: string[], verb: string): Selector[] {
  if (names.length === 0) throw new UsageError(`instances ${verb} needs at least one instance name or UUID`);
  return names.map(selectorOf);
}

/** Default bytes shown by `logs` without --tail. */
export const DEFAULT_LOG_TAIL_BYTES = 64 * 1024;
/** Poll interval of `logs --follow`. */
export const LOG_FOLLOW_INTERVAL_MS = 500;

/** Prints logs with each line prefixed by the instance name; with `follow`, keeps reading until the instance stops or the user interrupts. */
export async function streamLogs(cli: CliRuntime, api: PlatformClient, instances: Instance[], opts: { follow: boolean; tail: number; prefix: boolean }): Promise<void> {
  const offsets = new Map<string, number>();
  const partial = new Map<string, string>();
  const emit = (inst: Instance, text: string, flush: boolean): void => {
    const buffered = (partial.get(inst.uuid) ?? '') + text;
    const lines = buffered.split('\n');
    const rest = lines.pop() ?? '';
    partial.set(inst.uuid, flush ? '' : rest);
    if (flush && rest !== '') lines.push(rest);
    for (const line of lines) cli.stdout.write(opts.prefix ? `${inst.name}: ${line}\n` : `${line}\n`);
  };
  const readOnce = async (inst: Instance, first: boolean): Promise<void> => {
    const offset = offsets.get(inst.uuid);
    const chunk = await api.instanceLog({ uuid: inst.uuid }, first ? { limit: opts.tail } : { offset: offset ?? 0, limit: 1024 * 1024 });
    if (chunk.range) offsets.set(inst.uuid, chunk.range.end);
    emit(inst, chunk.output.toString('utf8'), false);
  };
  for (const inst of instances) await readOnce(inst, true);
  let live = instances;
  while (opts.follow && live.length > 0 && !cli.signal.aborted) {
    try {
      await cli.deps.sleep(LOG_FOLLOW_INTERVAL_MS, cli.signal);
    } catch {
      break;
    }
    for (const inst of live) await readOnce(inst, false);
    const states = await api.items<Instance>('GET', '/v1/instances', 'instances', live.map((i) => ({ uuid: i.uuid })), { allowPartial: true });
    live = live.filter((_, i) => states[i]?.status === 'success' && states[i]?.state !== 'stopped');
  }
  for (const inst of instances) emit(inst, '', true);
}

export const instancesCommand: CliCommand = {
  name: 'instances',
  summary: 'list, inspect, start, stop, restart, delete and wait for instances; read their logs',
  async run(args, cli) {
    const [sub, ...rest] = args;
    const parsed = parseCommand(
      cli,
      rest,
      { follow: { type: 'boolean', short: 'f' }, tail: { type: 'string' }, state: { type: 'string' }, timeout: { type: 'string' }, force: { type: 'boolean' } },
      USAGE,
    );
    const names = parsed.positionals;
    const v = parsed.values;
    const { api, metro } = nodeApi(cli);
    const now = cli.deps.now();
    switch (sub) {
      case 'list':
      case 'ls':
        print(cli, instancesView(await api.listInstances(), metro, now), 'table');
        return 0;
      case 'get':
        print(cli, instancesView(await api.getInstances(selectors(names, 'get')), metro, now), 'kv');
        return 0;
      case 'logs':
      case 'log': {
        const found = await api.getInstances(selectors(names, 'logs'));
        const tail = v.tail === undefined ? DEFAULT_LOG_TAIL_BYTES : Number(v.tail);
        if (!Number.isInteger(tail) || tail < 0 || tail > 1024 * 1024) throw new UsageError('--tail is a byte count up to 1048576');
        await streamLogs(cli, api, found, { follow: v.follow === true, tail, prefix: true });
        return 0;
      }
      case 'start':
        print(cli, changesView(await api.startInstances(selectors(names, 'start'))), 'kv');
        return 0;
      case 'stop':
        print(cli, changesView(await api.stopInstances(selectors(names, 'stop'), v.force === true ? { force: true } : {})), 'kv');
        return 0;
      case 'restart': {
        const sel = selectors(names, 'restart');
        await api.stopInstances(sel);
        print(cli, changesView(await api.startInstances(sel)), 'kv');
        return 0;
      }
      case 'delete':
      case 'remove':
      case 'rm':
        print(cli, changesView(await api.deleteInstances(selectors(names, 'delete'))), 'kv');
        return 0;
      case 'wait': {
        const timeout = parseTimeout(v.timeout ?? '60s');
        const state = v.state ?? 'running';
        print(cli, changesView(await api.waitInstances(selectors(names, 'wait'), state, timeout, cli.signal)), 'kv');
        return 0;
      }
      default:
        throw new UsageError(`unknown instances subcommand "${sub ?? ''}"\nusage: ${USAGE}`);
    }
  },
};
