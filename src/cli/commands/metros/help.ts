/** The help of `unikraft metros` and `unikraft nodes`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';

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

export const metrosSpec: CliCommandSpec = {
  name: 'metros',
  aliases: ['metro'],
  summary: METROS_HELP.summary,
  help: METROS_HELP,
};

export const nodesSpec: CliCommandSpec = {
  name: 'nodes',
  summary: NODES_HELP.summary,
  help: NODES_HELP,
};
