/** `unikraft metros list` and `unikraft nodes list`: what the control plane knows. */
import { UsageError } from '../../../util/index.js';
import { metrosView, nodesView } from '../../views.js';
import { controlPlane, parseCommand, print, subcommand } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import type { CommandHelp } from '../../../util/index.js';

export const METROS_HELP = {
  synopsis: 'list',
  summary: 'list the metros of the control plane',
  options: {},
  subcommands: { list: { synopsis: '', summary: 'list metros (NAME API REGISTRY NODES)', options: {} } },
} as const satisfies CommandHelp;

export const NODES_HELP = {
  synopsis: 'list',
  summary: 'list the nodes registered with the control plane (root)',
  options: {},
  subcommands: { list: { synopsis: '', summary: 'list nodes and their health', options: {} } },
} as const satisfies CommandHelp;

export const metrosCommand: CliCommand = {
  name: 'metros',
  aliases: ['metro'],
  summary: METROS_HELP.summary,
  help: METROS_HELP,
  async run(args, cli) {
    const { help, rest } = subcommand('unikraft metros', METROS_HELP, args.length === 0 ? ['list'] : args, { ls: 'list' });
    if (parseCommand(cli, 'unikraft metros list', help, rest).positionals.length > 0) throw new UsageError('metros list takes no arguments');
    print(cli, metrosView(await controlPlane(cli).listMetros()), 'table');
    return 0;
  },
};

export const nodesCommand: CliCommand = {
  name: 'nodes',
  summary: NODES_HELP.summary,
  help: NODES_HELP,
  async run(args, cli) {
    const { help, rest } = subcommand('unikraft nodes', NODES_HELP, args.length === 0 ? ['list'] : args, { ls: 'list' });
    if (parseCommand(cli, 'unikraft nodes list', help, rest).positionals.length > 0) throw new UsageError('nodes list takes no arguments');
    print(cli, nodesView(await controlPlane(cli).listNodes(), cli.deps.now()), 'table');
    return 0;
  },
};
