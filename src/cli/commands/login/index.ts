/**
 * `unikraft login --token TOKEN [--controlplane URL] [--profile NAME]`:
 * checks the token against the control plane (`GET /v1/auth`), learns the
 * account and the metros (`GET /v1/metros`), and stores all of it in the
 * profile (created when new, made current). A rejected token is reported as
 * such and nothing is written.
 */
import { UsageError } from '../../../util/index.js';
import { PlatformClient } from '../../../client/index.js';
import { configPath, loadConfig, saveConfig, type Profile } from '../../config.js';
import { parseCommand, progress } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import { LOGIN_HELP, loginSpec } from './help.js';

export const loginCommand: CliCommand = {
  ...loginSpec,
  async run(args, cli) {
    const parsed = parseCommand(cli, 'unikraft login', LOGIN_HELP, args);
    const token = parsed.values.token ?? cli.env.UKC_TOKEN;
    if (!token) throw new UsageError('login needs --token TOKEN (or UKC_TOKEN)');
    const path = configPath(cli.env, cli.globals.config);
    const config = loadConfig(path);
    const name = cli.globals.profile ?? config.currentProfile ?? 'default';
    const existing: Profile = config.profiles[name] ?? { metros: {} };
    const cpUrl = parsed.values.controlplane ?? existing.controlplane;
    if (!cpUrl) throw new UsageError(`profile "${name}" has no control plane: give --controlplane URL`);
    const api = new PlatformClient({ baseUrl: cpUrl, token, ...(cli.deps.transport ? { transport: cli.deps.transport } : {}) });
    cli.resolved = { configPath: path, profileName: name, profile: existing, token, tokenSource: '--token', account: undefined, controlplane: cpUrl, registry: undefined, metro: undefined, metroApi: undefined, metroRegistry: undefined };
    const me = await api.whoami();
    const metros = await api.listMetros();
    const profile: Profile = { ...existing, token, account: me.account, controlplane: api.baseUrl, metros: { ...existing.metros } };
    profile.registry ??= new URL(api.baseUrl).host;
    for (const m of metros) if (typeof m.api === 'string') profile.metros[m.name] = typeof m.registry === 'string' ? { api: m.api, registry: m.registry } : { api: m.api };
    if (profile.metro === undefined && metros[0]) profile.metro = metros[0].name;
    config.profiles[name] = profile;
    config.currentProfile = name;
    saveConfig(path, config);
    progress(cli, `logged in as ${me.account} (profile ${name}, ${Object.keys(profile.metros).length} metro(s)); saved to ${path}`);
    return 0;
  },
};
