/** `unikraft services list | get NAME... | create -p 443:8080 [--name N] [--domain D] | delete NAME...` over the node's /v1/services. */
import { UsageError } from '../../../util/index.js';
import { selectorOf } from '../../../client/index.js';
import { servicesView } from '../../views.js';
import { parsePortSpecs } from '../../ports.js';
import { nodeApi, parseCommand, print, subcommand } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import type { CommandHelp } from '../../../util/index.js';
import { SERVICES_HELP, servicesSpec } from './help.js';

export const servicesCommand: CliCommand = {
  ...servicesSpec,
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
