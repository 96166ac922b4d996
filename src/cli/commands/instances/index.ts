/**
 * `unikraft instances list|get|logs|start|stop|restart|delete|wait` against
 * the selected metro's node API. Names or UUIDs select instances.
 */
import { UsageError } from '../../../util/index.js';
import { selectorOf, type Instance, type PlatformClient, type Selector } from '../../../client/index.js';
import { changesView, instancesView } from '../../views.js';
import { nodeApi, parseCommand, parseTimeout, print, subcommand, type CliRuntime } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import type { CommandHelp } from '../../../util/index.js';
import { INSTANCES_HELP, instancesSpec } from './help.js';

type AllInstanceOptions = typeof INSTANCES_HELP.subcommands.logs.options & typeof INSTANCES_HELP.subcommands.stop.options & typeof INSTANCES_HELP.subcommands.wait.options;

function selectors(names: string[], verb: string): Selector[] {
  if (names.length === 0) throw new UsageError(`instances ${verb} needs at least one instance name or UUID`);
  return names.map(selectorOf);
}

/** Default bytes shown by `logs` without --tail. */
export const DEFAULT_LOG_TAIL_BYTES = 64 * 1024;
/** The most `logs --tail N` reads back to find N lines (the node's own read limit). */
export const MAX_LOG_READ_BYTES = 1024 * 1024;
/** Poll interval of `logs --follow`. */
export const LOG_FOLLOW_INTERVAL_MS = 500;

/** Prints logs with each line prefixed by the instance name; with `follow`, keeps reading until the instance stops or the user interrupts. */
export async function streamLogs(cli: CliRuntime, api: PlatformClient, instances: Instance[], opts: { follow: boolean; tail: number; prefix: boolean; lines?: number }): Promise<void> {
  const offsets = new Map<string, number>();
  const partial = new Map<string, string>();
  const emit = (inst: Instance, text: string, flush: boolean, keep?: { lines: number; cutFirst: boolean }): void => {
    const buffered = (partial.get(inst.uuid) ?? '') + text;
    let lines = buffered.split('\n');
    let rest = lines.pop() ?? '';
    if (keep !== undefined) {
      // Read from the middle of the log: its first line is a fragment, not a line.
      if (keep.cutFirst) lines = lines.slice(1);
      // The last N lines, the unfinished one (still being written) counting as one.
      const whole = rest === '' ? lines : [...lines, rest];
      const kept = keep.lines === 0 ? [] : whole.slice(-keep.lines);
      if (rest !== '') {
        rest = kept.length > 0 ? (kept.pop() ?? '') : '';
      }
      lines = kept;
    }
    partial.set(inst.uuid, flush ? '' : rest);
    if (flush && rest !== '') lines.push(rest);
    for (const line of lines) cli.stdout.write(opts.prefix ? `${inst.name}: ${line}\n` : `${line}\n`);
  };
  const readOnce = async (inst: Instance, first: boolean): Promise<void> => {
    const offset = offsets.get(inst.uuid);
    const chunk = await api.instanceLog({ uuid: inst.uuid }, first ? { limit: opts.lines !== undefined ? MAX_LOG_READ_BYTES : opts.tail } : { offset: offset ?? 0, limit: MAX_LOG_READ_BYTES });
    if (chunk.range) offsets.set(inst.uuid, chunk.range.end);
    const keep = first && opts.lines !== undefined && opts.lines >= 0 ? { lines: opts.lines, cutFirst: (chunk.range?.start ?? 0) > 0 } : undefined;
    emit(inst, chunk.output.toString('utf8'), false, keep);
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
  ...instancesSpec,
  async run(args, cli) {
    const { name: sub, help, rest } = subcommand('unikraft instances', INSTANCES_HELP, args, { ls: 'list', log: 'logs', rm: 'delete', remove: 'delete' });
    // Parse with this subcommand's table (typed with all of them: the others' flags stay undefined).
    const parsed = parseCommand(cli, `unikraft instances ${sub}`, help as CommandHelp & { options: AllInstanceOptions }, rest);
    const names = parsed.positionals;
    const v = parsed.values;
    const { api, metro } = nodeApi(cli);
    const now = cli.deps.now();
    switch (sub) {
      case 'list':
        if (names.length > 0) throw new UsageError('instances list takes no names (use instances get)');
        print(cli, instancesView(await api.listInstances(), metro, now), 'table');
        return 0;
      case 'get':
        print(cli, instancesView(await api.getInstances(selectors(names, 'get')), metro, now), 'kv');
        return 0;
      case 'logs': {
        const found = await api.getInstances(selectors(names, 'logs'));
        const lines = v.tail === undefined ? undefined : Number(v.tail);
        if (lines !== undefined && (!/^-?\d+$/.test(v.tail!) || !Number.isSafeInteger(lines) || lines < -1)) throw new UsageError(`--tail ${v.tail}: give a number of lines, or -1 for all`);
        await streamLogs(cli, api, found, { follow: v.follow === true, tail: DEFAULT_LOG_TAIL_BYTES, prefix: true, ...(lines !== undefined ? { lines } : {}) });
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
        print(cli, changesView(await api.deleteInstances(selectors(names, 'delete'))), 'kv');
        return 0;
      case 'wait': {
        const timeout = parseTimeout(v.timeout ?? '60s');
        const state = v.state ?? 'running';
        print(cli, changesView(await api.waitInstances(selectors(names, 'wait'), state, timeout, cli.signal)), 'kv');
        return 0;
      }
    }
  },
};
