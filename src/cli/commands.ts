// The table of `unikraft` commands. Each entry lives in its own folder under commands/.
import type { Command } from '../util/command.js';
import { versionCommand } from '../util/version.js';

export const cliCommands: readonly Command[] = [versionCommand];
