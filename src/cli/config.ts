/**
 * The CLI's configuration file: named profiles, each a platform to talk to.
 *
 *   # ~/.config/unikraft/config.yaml   (UNIKRAFT_CONFIG or --config elsewhere)
 *   current-profile: dev
 *   profiles:
 *     dev:
 *       token: ukc_…                       # API token (UKC_TOKEN overrides)
 *       account: root                      # namespace of your images
 *       controlplane: http://127.0.0.1:7000
 *       registry: 127.0.0.1:7000           # central registry host[:port]
 *       metro: dev                         # default metro (UKC_METRO overrides)
 *       metros:
 *         dev:
 *           api: http://127.0.0.1:7001     # the node API of that metro
 *           registry: 127.0.0.1:7001       # the node's local registry
 *
 * Invariants: the file is parsed strictly (a wrong type names the file and the
 * key, nothing is guessed); it is written atomically (temp file, fsync, rename,
 * fsync dir) with mode 0600 because it holds tokens; settings resolve in one
 * place (`resolveSettings`) with the precedence flag > environment > profile.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError, writeFileAtomicSync } from '../util/index.js';
import { yaml } from './yaml.js';

export interface MetroProfile {
  api: string;
  registry?: string;
}

export interface Profile {
  token?: string;
  account?: string;
  controlplane?: string;
  registry?: string;
  metro?: string;
  metros: Record<string, MetroProfile>;
}

export interface CliConfig {
  currentProfile?: string;
  profiles: Record<string, Profile>;
}

export class ConfigError extends UserError {
  constructor(path: string, message: string) {
    super(`config ${path}: ${message}`);
    this.name = 'ConfigError';
  }
}

/** Largest config file read (bytes). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** `--config`, else UNIKRAFT_CONFIG, else $XDG_CONFIG_HOME/unikraft/config.yaml, else ~/.config/unikraft/config.yaml. */
export function configPath(env: NodeJS.ProcessEnv, flag?: string): string {
  if (flag) return flag;
  if (env.UNIKRAFT_CONFIG) return env.UNIKRAFT_CONFIG;
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'unikraft', 'config.yaml');
  const home = env.HOME;
  if (!home) throw new UserError('cannot find the config file: set HOME, UNIKRAFT_CONFIG or --config');
  return join(home, '.config', 'unikraft', 'config.yaml');
}

const PROFILE_KEYS = new Set(['token', 'account', 'controlplane', 'registry', 'metro', 'metros']);
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

function optString(path: string, where: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ConfigError(path, `${where} must be a string`);
  return v;
}

function parseProfile(path: string, name: string, raw: unknown): Profile {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ConfigError(path, `profile "${name}" must be a map`);
  const rec = raw as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (!PROFILE_KEYS.has(k)) throw new ConfigError(path, `profile "${name}": unknown key "${k}"`);
  const profile: Profile = { metros: {} };
  for (const key of ['token', 'account', 'controlplane', 'registry', 'metro'] as const) {
    const v = optString(path, `profiles.${name}.${key}`, rec[key]);
    if (v !== undefined) profile[key] = v;
  }
  const metros = rec.metros;
  if (metros !== undefined && metros !== null) {
    if (typeof metros !== 'object' || Array.isArray(metros)) throw new ConfigError(path, `profiles.${name}.metros must be a map`);
    for (const [metro, m] of Object.entries(metros as Record<string, unknown>)) {
      if (!NAME_RE.test(metro)) throw new ConfigError(path, `profiles.${name}.metros: invalid metro name "${metro}"`);
      if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new ConfigError(path, `profiles.${name}.metros.${metro} must be a map`);
      const mr = m as Record<string, unknown>;
      for (const k of Object.keys(mr)) if (k !== 'api' && k !== 'registry') throw new ConfigError(path, `profiles.${name}.metros.${metro}: unknown key "${k}"`);
      const api = optString(path, `profiles.${name}.metros.${metro}.api`, mr.api);
      if (api === undefined) throw new ConfigError(path, `profiles.${name}.metros.${metro}.api is required`);
      const registry = optString(path, `profiles.${name}.metros.${metro}.registry`, mr.registry);
      profile.metros[metro] = registry === undefined ? { api } : { api, registry };
    }
  }
  return profile;
}

export function parseConfig(path: string, text: string): CliConfig {
  let raw: unknown;
  try {
    raw = yaml().parse(text);
  } catch (err) {
    throw new ConfigError(path, `not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (raw === null || raw === undefined) return { profiles: {} };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(path, 'must be a map');
  const rec = raw as Record<string, unknown>;
  for (const k of Object.keys(rec)) if (k !== 'current-profile' && k !== 'profiles') throw new ConfigError(path, `unknown key "${k}"`);
  const config: CliConfig = { profiles: {} };
  const current = optString(path, 'current-profile', rec['current-profile']);
  if (current !== undefined) config.currentProfile = current;
  const profiles = rec.profiles;
  if (profiles !== undefined && profiles !== null) {
    if (typeof profiles !== 'object' || Array.isArray(profiles)) throw new ConfigError(path, 'profiles must be a map');
    for (const [name, p] of Object.entries(profiles as Record<string, unknown>)) {
      if (!NAME_RE.test(name)) throw new ConfigError(path, `invalid profile name "${name}"`);
      config.profiles[name] = parseProfile(path, name, p);
    }
  }
  return config;
}

export function loadConfig(path: string): CliConfig {
  let text: string;
  try {
    const buf = readFileSync(path);
    if (buf.length > MAX_CONFIG_BYTES) throw new ConfigError(path, `larger than ${MAX_CONFIG_BYTES} bytes`);
    text = buf.toString('utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(path, (err as Error).message);
  }
  return parseConfig(path, text);
}

export function serializeConfig(config: CliConfig): string {
  const out: Record<string, unknown> = {};
  if (config.currentProfile !== undefined) out['current-profile'] = config.currentProfile;
  const profiles: Record<string, unknown> = {};
  for (const [name, p] of Object.entries(config.profiles)) {
    const rec: Record<string, unknown> = {};
    for (const key of ['token', 'account', 'controlplane', 'registry', 'metro'] as const) if (p[key] !== undefined) rec[key] = p[key];
    if (Object.keys(p.metros).length > 0) rec.metros = p.metros;
    profiles[name] = rec;
  }
  out.profiles = profiles;
  return yaml().stringify(out);
}

/** Writes the config atomically with mode 0600 (it holds tokens). */
export function saveConfig(path: string, config: CliConfig): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomicSync(path, serializeConfig(config), 0o600);
}

/** The environment variables that carry a token, first found wins. */
export const TOKEN_ENV_VARS = ['UKC_TOKEN', 'UNIKRAFT_CLOUD_TOKEN', 'KRAFTCLOUD_TOKEN'] as const;

export interface GlobalFlags {
  config?: string;
  profile?: string;
  metro?: string;
}

/** Everything a command needs to reach the platform, resolved once. */
export interface Settings {
  configPath: string;
  profileName: string | undefined;
  profile: Profile | undefined;
  token: string | undefined;
  /** Where the token came from (for error messages): an env var name or `profile <name>`. */
  tokenSource: string | undefined;
  account: string | undefined;
  controlplane: string | undefined;
  /** Central registry host[:port]. */
  registry: string | undefined;
  metro: string | undefined;
  /** Node API of the selected metro. */
  metroApi: string | undefined;
  /** The node's local registry of the selected metro. */
  metroRegistry: string | undefined;
}

export function resolveSettings(env: NodeJS.ProcessEnv, flags: GlobalFlags): Settings {
  const path = configPath(env, flags.config);
  const config = loadConfig(path);
  // UNIKRAFT_PROFILE is the real CLI's name for it; UKC_PROFILE is ukc's own.
  const fromEnv = env.UNIKRAFT_PROFILE || env.UKC_PROFILE || undefined;
  const profileName = flags.profile ?? fromEnv ?? config.currentProfile;
  const profile = profileName === undefined ? undefined : config.profiles[profileName];
  if (profileName !== undefined && profile === undefined && (flags.profile !== undefined || fromEnv !== undefined)) {
    throw new UserError(`no profile "${profileName}" in ${path} (profiles: ${Object.keys(config.profiles).join(', ') || 'none'})`);
  }
  let token: string | undefined;
  let tokenSource: string | undefined;
  for (const name of TOKEN_ENV_VARS) {
    const v = env[name];
    if (v !== undefined && v !== '') {
      token = v;
      tokenSource = name;
      break;
    }
  }
  if (token === undefined && profile?.token) {
    token = profile.token;
    tokenSource = `profile ${profileName}`;
  }
  let metro = flags.metro ?? (env.UKC_METRO || undefined) ?? profile?.metro;
  const metros = profile?.metros ?? {};
  if (metro === undefined && Object.keys(metros).length === 1) metro = Object.keys(metros)[0];
  let metroApi: string | undefined;
  let metroRegistry: string | undefined;
  if (metro !== undefined && /^https?:\/\//.test(metro)) {
    // UKC_METRO may be the node API address itself.
    metroApi = metro;
    metro = new URL(metro).host;
  } else if (metro !== undefined) {
    const m = metros[metro];
    if (m) {
      metroApi = m.api;
      metroRegistry = m.registry;
    }
  }
  return {
    configPath: path,
    profileName,
    profile,
    token,
    tokenSource,
    account: profile?.account,
    controlplane: profile?.controlplane,
    registry: profile?.registry,
    metro,
    metroApi,
    metroRegistry,
  };
}
