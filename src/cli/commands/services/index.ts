/** `unikraft services list | get NAME... | create -p 443:8080 [--name N] [--domain D] | delete NAME...` over the node's /v1/services. */
import { UsageError } from '../../../util/index.js';
import { selectorOf } from '../../../client/index.js';
import { servicesView } from '../../views.js';
import { parsePortSpecs } from '../../ports.js';
import { nodeApi, parseCommand, print, subcommand } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import type { CommandHelp } from '../../../util/index.js';

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

export const servicesCommand: CliCommand = {
  name: 'services',
  aliases: ['service', 'svc'],
  summary: SERVICES_HELP.summary,
  help: SERVICES_HELP,
  async run(args, cli) {
    const { name: sub, help, rest } = subcommand('unikraft services', SERVICES_HELP, args, { ls: 'list', rm: 'delete', remove: 'delete' });
    const parsed = parseCommand(cli, `unikraft services ${sub}`, help as CommandHelp & { options: typeof SERVICES_HELP.subcommands.create.options }, rest);
    const v = parsed.values;
    const { api } = nodeApi(cli);
    const names = parsed.positionals;
    switch (sub) {
      case 'list':
        print(cli, servicesView(await api.listServices()), 'table');
        return 0;
      case 'get':
        if (names.length === 0) throw new UsageError('services get needs a name');
        print(cli, servicesView(await api.getServices(names.map(selectorOf))), 'kv');
        return 0;
      case 'create': {
        if (!v.port || v.port.length === 0) throw new UsageError('services create needs at least one -p PUBLIC:DEST');
        const body: Record<string, unknown> = { services: parsePortSpecs(v.port) };
        if (v.name) body.name = v.name;
        if (v.domain) body.domains = v.domain.map((name) => ({ name }));
        for (const [flag, key] of [['soft-limit', 'soft_limit'], ['hard-limit', 'hard_limit']] as const) {
          const text = v[flag];
          if (text !== undefined) {
            if (!/^\d{1,9}$/.test(text)) throw new UsageError(`--${flag} must be a whole number`);
            body[key] = Number(text);
          }
        }
        print(cli, servicesView(await api.createService(body)), 'kv');
        return 0;
      }
      case 'delete':
        if (names.length === 0) throw new UsageError('services delete needs a name');
        print(cli, servicesView(await api.deleteServices(names.map(selectorOf))), 'kv');
        return 0;
    }
  },
};
