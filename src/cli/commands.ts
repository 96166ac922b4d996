// The table of `unikraft` commands. Each entry lives in its own folder under commands/:
// its help.ts (pure data) is imported here, its index.ts only when the command runs
// (see command.ts for why, and bench/cli/ for what it buys).
import type { Command } from '../util/index.js';
import { versionCommand } from '../util/index.js';
import { asCommand, type LazyCliCommand } from './command.js';
import { buildSpec } from './commands/build/help.js';
import { imagesSpec } from './commands/images/help.js';
import { instancesSpec } from './commands/instances/help.js';
import { loginSpec } from './commands/login/help.js';
import { metrosSpec, nodesSpec } from './commands/metros/help.js';
import { profilesSpec } from './commands/profiles/help.js';
import { runSpec } from './commands/run/help.js';
import { servicesSpec } from './commands/services/help.js';
import { defaultDeps, type CliDeps } from './deps.js';
import type { CliGlobals } from './global-options.js';

export const platformCommands: readonly LazyCliCommand[] = [
  { ...buildSpec, load: async () => (await import('./commands/build-glue.js')).buildCommand },
  { ...runSpec, load: async () => (await import('./commands/run/index.js')).runCommand },
  { ...instancesSpec, load: async () => (await import('./commands/instances/index.js')).instancesCommand },
  { ...imagesSpec, load: async () => (await import('./commands/images/index.js')).imagesCommand },
  { ...servicesSpec, load: async () => (await import('./commands/services/index.js')).servicesCommand },
  { ...loginSpec, load: async () => (await import('./commands/login/index.js')).loginCommand },
  { ...profilesSpec, load: async () => (await import('./commands/profiles/index.js')).profilesCommand },
  { ...metrosSpec, load: async () => (await import('./commands/metros/index.js')).metrosCommand },
  { ...nodesSpec, load: async () => (await import('./commands/metros/index.js')).nodesCommand },
];

/** The command table with injected dependencies and global flags (tests pass their own). */
export function makeCliCommands(deps: CliDeps = defaultDeps, globals: CliGlobals = {}): Command[] {
  return [versionCommand, ...platformCommands.map((c) => asCommand(c, deps, globals))];
}

export const cliCommands: readonly Command[] = makeCliCommands();
