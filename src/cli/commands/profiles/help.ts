/** The help of `unikraft profiles`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';

export const PROFILES_HELP = {
  synopsis: 'list|show|use|delete ...',
  summary: 'list, show, switch and delete CLI profiles',
  options: {},
  subcommands: {
    list: { synopsis: '', summary: 'list the profiles (tokens are never shown)', options: {} },
    show: { synopsis: '[NAME]', summary: 'show a profile (default the current one)', options: {} },
    use: { synopsis: 'NAME', summary: 'make a profile the current one', options: {} },
    delete: { synopsis: 'NAME', summary: 'delete a profile', options: {} },
  },
} as const satisfies CommandHelp;

export const profilesSpec: CliCommandSpec = {
  name: 'profiles',
  aliases: ['profile'],
  summary: PROFILES_HELP.summary,
  help: PROFILES_HELP,
};
