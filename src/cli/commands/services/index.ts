/** `unikraft services list | get NAME... | create -p 443:8080 [--name N] [--domain D] | delete NAME...` over the node's /v1/services. */
import { UsageError } from '../../../util/command.js';
import { selectorOf } from '../../../client/platform.js';
import { servicesView } from '../../views.js';
import { parsePortSpecs } from '../../ports.js';
import { nodeApi, parseCommand, print } from '../../runtime.js';
import type { CliCommand } from '../../command.js';

const USAGE = 'unikraft services list | get NAME... | create -p PUBLIC:DEST[/handlers]... [--name NAME] [--domain DOMAIN]... [--soft-limit N] [--hard-limit N] | delete NAME...';

export const servicesCommand: CliCommand = {
  name: 'services',
  summary: 'list, create, inspect and delete service groups (public ports and domains)',
  async run(args, cli) {
    const [sub, ...rest] = args;
    const parsed = parseCommand(
      cli,
      rest,
      { port: { type: 'string', short: 'p', multiple: true }, name: { type: 'string', short: 'n' }, domain: { type: 'string', multiple: true }, 'soft-limit': { type: 'string' }, 'hard-limit': { type: 'string' } },
      USAGE,
    );
    const v = parsed.values;
    const { api } = nodeApi(cli);
    const names = parsed.positionals;
    switch (sub) {
      case 'list':
      case 'ls':
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
      case 'remove':
      case 'rm':
        if (names.length === 0) throw new UsageError('services delete needs a name');
        print(cli, servicesView(await api.deleteServices(names.map(selectorOf))), 'kv');
        return 0;
      default:
        throw new UsageError(`unknown services subcommand "${sub ?? ''}"\nusage: ${USAGE}`);
    }
  },
};
