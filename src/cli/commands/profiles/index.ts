/** `unikraft profiles list | show [NAME] | use NAME | delete NAME`: the profiles of the CLI config (tokens are never printed). */
import { UsageError, UserError } from '../../../util/index.js';
import { configPath, loadConfig, saveConfig } from '../../config.js';
import { parseCommand, print, subcommand } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import type { DisplayRecord } from '../../output.js';
import { PROFILES_HELP, profilesSpec } from './help.js';

export const profilesCommand: CliCommand = {
  ...profilesSpec,
  async run(args, cli) {
    const { name: sub, help, rest } = subcommand('unikraft profiles', PROFILES_HELP, args, { ls: 'list', rm: 'delete' });
    const parsed = parseCommand(cli, `unikraft profiles ${sub}`, help, rest);
    const path = configPath(cli.env, cli.globals.config);
    const config = loadConfig(path);
    const records = (names: string[]): DisplayRecord[] =>
      names.map((n) => {
        const p = config.profiles[n]!;
        return {
          name: n,
          current: n === config.currentProfile,
          account: p.account,
          controlplane: p.controlplane,
          registry: p.registry,
          metro: p.metro,
          metros: Object.fromEntries(Object.entries(p.metros).map(([m, x]) => [m, x.api])),
          token: p.token ? 'set' : 'unset',
        };
      });
    const view = (names: string[]) => ({
      records: records(names),
      columns: [
        { header: 'name', path: 'name' },
        { header: 'current', path: 'current' },
        { header: 'account', path: 'account' },
        { header: 'controlplane', path: 'controlplane' },
        { header: 'metro', path: 'metro' },
      ],
      quiet: 'name',
      empty: `no profiles in ${path}`,
    });
    const [name] = parsed.positionals;
    const must = (n: string | undefined): string => {
      if (n === undefined) throw new UsageError(`profiles ${sub} needs a profile name`);
      if (!config.profiles[n]) throw new UserError(`no profile "${n}" in ${path}`);
      return n;
    };
    switch (sub) {
      case 'list':
        print(cli, view(Object.keys(config.profiles)), 'table');
        return 0;
      case 'show':
        print(cli, view([must(name ?? cli.globals.profile ?? config.currentProfile)]), 'kv');
        return 0;
      case 'use':
        config.currentProfile = must(name);
        saveConfig(path, config);
        return 0;
      case 'delete':
        delete config.profiles[must(name)];
        if (config.currentProfile === name) delete config.currentProfile;
        saveConfig(path, config);
        return 0;
    }
  },
};
