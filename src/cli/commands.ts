// The table of `unikraft` commands. Each entry lives in its own folder under commands/.
import type { Command } from '../util/index.js';
import { versionCommand } from '../util/index.js';
import { asCommand, type CliCommand } from './command.js';
import { buildCommand } from './commands/build-glue.js';
import { imagesCommand } from './commands/images/index.js';
import { instancesCommand } from './commands/instances/index.js';
import { loginCommand } from './commands/login/index.js';
import { metrosCommand, nodesCommand } from './commands/metros/index.js';
import { profilesCommand } from './commands/profiles/index.js';
import { runCommand } from './commands/run/index.js';
import { servicesCommand } from './commands/services/index.js';
import { defaultDeps, type CliDeps, type CliGlobals } from './runtime.js';

export const platformCommands: readonly CliCommand[] = [buildCommand, runCommand, instancesCommand, imagesCommand, servicesCommand, loginCommand, profilesCommand, metrosCommand, nodesCommand];

/** The command table with injected dependencies and global flags (tests pass their own). */
export function makeCliCommands(deps: CliDeps = defaultDeps, globals: CliGlobals = {}): Command[] {
  return [versionCommand, ...platformCommands.map((c) => asCommand(c, deps, globals))];
}

export const cliCommands: readonly Command[] = makeCliCommands();
