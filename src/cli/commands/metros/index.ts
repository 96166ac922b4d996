/** `unikraft metros list` and `unikraft nodes list`: what the control plane knows. */
import { UsageError } from '../../../util/index.js';
import { metrosView, nodesView } from '../../views.js';
import { controlPlane, parseCommand, print, subcommand } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import { METROS_HELP, NODES_HELP, metrosSpec, nodesSpec } from './help.js';

export const metrosCommand: CliCommand = {
  ...metrosSpec,
  async run(args, cli) {
    const { help, rest } = subcommand('unikraft metros', METROS_HELP, args.length === 0 ? ['list'] : args, { ls: 'list' });
    if (parseCommand(cli, 'unikraft metros list', help, rest).positionals.length > 0) throw new UsageError('metros list takes no arguments');
    print(cli, metrosView(await controlPlane(cli).listMetros()), 'table');
    return 0;
  },
};

export const nodesCommand: CliCommand = {
  ...nodesSpec,
  async run(args, cli) {
    const { help, rest } = subcommand('unikraft nodes', NODES_HELP, args.length === 0 ? ['list'] : args, { ls: 'list' });
    if (parseCommand(cli, 'unikraft nodes list', help, rest).positionals.length > 0) throw new UsageError('nodes list takes no arguments');
    print(cli, nodesView(await controlPlane(cli).listNodes(), cli.deps.now()), 'table');
    return 0;
  },
};
