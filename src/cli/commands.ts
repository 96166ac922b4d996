// The table of `unikraft` commands. Each entry lives in its own folder under commands/.
import type { Command } from '../util/command.js';
import { versionCommand } from '../util/version.js';
import { buildCommand } from './commands/build/index.js';
import { imagesCommand } from './commands/images-import/index.js';

export const cliCommands: readonly Command[] = [versionCommand, buildCommand, imagesCommand];
