/** `unikraft metros list` and `unikraft nodes list`: what the control plane knows. */
import { UsageError } from '../../../util/command.js';
import { metrosView, nodesView } from '../../views.js';
import { controlPlane, parseCommand, print } from '../../runtime.js';
import type { CliCommand } from '../../command.js';

export const metrosCommand: CliCommand = {
  name: 'metros',
  summary: 'list the metros of the control plane',
  async run(args, cli) {
    const [sub = 'list', ...rest] = args;
    parseCommand(cli, rest, {}, 'unikraft metros list');
    if (sub !== 'list' && sub !== 'ls') throw new UsageError('usage: unikraft metros list');
    print(cli, metrosView(await controlPlane(cli).listMetros()), 'table');
    return 0;
  },
};

export const nodesCommand: CliCommand = {
  name: 'nodes',
  summary: 'list the nodes registered with the control plane (root)',
  async run(args, cli) {
    const [sub = 'list', ...rest] = args;
    parseCommand(cli, rest, {}, 'unikraft nodes list');
    if (sub !== 'list' && sub !== 'ls') throw new UsageError('usage: unikraft nodes list');
    print(cli, nodesView(await controlPlane(cli).listNodes(), cli.deps.now()), 'table');
    return 0;
  },
};
