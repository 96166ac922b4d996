/** The help of `unikraft services`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';

export const SERVICES_HELP = {
  synopsis: 'list|get|create|delete ...',
  summary: 'list, create, inspect and delete service groups (public ports and domains)',
  options: {},
  subcommands: {
    list: { synopsis: '', summary: 'list service groups', options: {} },
    get: { synopsis: 'NAME|UUID...', summary: 'show service groups', options: {} },
    create: {
      synopsis: '-p PUBLIC:DEST[/handlers]... [--name NAME] [--domain DOMAIN]... [--soft-limit N] [--hard-limit N]',
      summary: 'create a service group',
      options: {
        port: { type: 'string', short: 'p', multiple: true, value: 'PUBLIC:DEST[/tls+http]', help: 'a public port served by instances on DEST' },
        name: { type: 'string', short: 'n', value: 'NAME', help: 'the group\'s name (default generated)' },
        domain: { type: 'string', multiple: true, value: 'DOMAIN', help: 'a domain (FQDN) the group answers for' },
        'soft-limit': { type: 'string', value: 'N', help: 'concurrent requests per instance before load is spread' },
        'hard-limit': { type: 'string', value: 'N', help: 'concurrent requests per instance at most' },
      },
    },
    delete: { synopsis: 'NAME|UUID...', summary: 'delete service groups', options: {} },
  },
} as const satisfies CommandHelp;

export const servicesSpec: CliCommandSpec = {
  name: 'services',
  aliases: ['service', 'svc'],
  summary: SERVICES_HELP.summary,
  help: SERVICES_HELP,
};
