/** The help of `unikraft login`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';

export const LOGIN_HELP = {
  synopsis: '--token TOKEN [--controlplane URL] [--profile NAME]',
  summary: 'store an API token (checked against the control plane) in a CLI profile',
  options: {
    token: { type: 'string', value: 'TOKEN', help: 'the API token (default UKC_TOKEN)' },
    controlplane: { type: 'string', value: 'URL', help: "the control plane's address (default the profile's)" },
  },
} as const satisfies CommandHelp;

export const loginSpec: CliCommandSpec = {
  name: 'login',
  summary: LOGIN_HELP.summary,
  help: LOGIN_HELP,
};
