/**
 * The CLI's global flags: the option table every command shows in its help and
 * accepts (after its name, or before it: `unikraft -o json instances list`).
 * Pure data, loaded on every start; the parsing that folds them into
 * `cli.globals` is in runtime.ts.
 */
import type { OptionTable } from '../util/index.js';
import type { GlobalFlags } from './config.js';
import type { OutputFormat } from './output.js';

export interface CliGlobals extends GlobalFlags {
  format?: OutputFormat;
}

/** Options every command of ours accepts after its name too (and before it: `unikraft -o json instances list`). */
export const GLOBAL_OPTIONS = {
  output: { type: 'string', short: 'o', value: 'FORMAT', help: 'output format: kv, table, json, yaml or quiet' },
  config: { type: 'string', value: 'FILE', help: 'CLI config file (default ~/.config/unikraft/config.yaml, or UNIKRAFT_CONFIG)' },
  profile: { type: 'string', value: 'NAME', help: 'profile of the config to use (default its current-profile, or UNIKRAFT_PROFILE / UKC_PROFILE)' },
  metro: { type: 'string', value: 'NAME|URL', help: 'metro to talk to (default the profile\'s, or UKC_METRO)' },
  'log-level': { type: 'string', value: 'LEVEL', help: 'accepted for compatibility with the upstream CLI' },
} as const satisfies OptionTable;
