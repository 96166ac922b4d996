/** The help of `unikraft instances`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';

const NAMES = 'NAME|UUID...';

export const INSTANCES_HELP = {
  synopsis: 'list|get|logs|start|stop|restart|delete|wait ...',
  summary: 'list, inspect, start, stop, restart, delete and wait for instances; read their logs',
  options: {},
  subcommands: {
    list: { synopsis: '', summary: 'list instances (METRO NAME STATE IMAGE ARGS MEMORY VCPUS FQDN CREATED)', options: {} },
    get: { synopsis: NAMES, summary: 'show instances in full', options: {} },
    logs: {
      synopsis: `${NAMES} [--follow] [--tail LINES]`,
      summary: 'print the console output, each line prefixed with the instance name',
      options: {
        follow: { type: 'boolean', short: 'f', help: 'keep printing until the instances stop or Ctrl-C' },
        tail: { type: 'string', value: 'LINES', help: 'show only the last LINES lines first, -1 for all the node keeps (default: the last 64 KiB)' },
      },
    },
    start: { synopsis: NAMES, summary: 'start stopped instances', options: {} },
    stop: { synopsis: `${NAMES} [--force]`, summary: 'stop instances', options: { force: { type: 'boolean', help: 'stop at once, without the graceful shutdown' } } },
    restart: { synopsis: NAMES, summary: 'stop, then start instances', options: {} },
    delete: { synopsis: NAMES, summary: 'delete instances', options: {} },
    wait: {
      synopsis: `${NAMES} [--state running] [--timeout 60s]`,
      summary: 'wait until instances reach a state',
      options: {
        state: { type: 'string', value: 'STATE', help: 'the state to wait for (default running)' },
        timeout: { type: 'string', value: 'DURATION', help: 'give up after this long, e.g. 30s, 5m, -1 for never (default 60s)' },
      },
    },
  },
} as const satisfies CommandHelp;

export const instancesSpec: CliCommandSpec = {
  name: 'instances',
  aliases: ['instance', 'inst', 'vm', 'vms'],
  summary: INSTANCES_HELP.summary,
  help: INSTANCES_HELP,
};
