// The table of `ukcd` roles. Each entry lives in its own module.
import { registryCommand } from '../registry/command.js';
import { accountsCommand, tokensCommand } from './accounts-command.js';
import type { Command } from '../util/command.js';
import { versionCommand } from '../util/version.js';
import { controlplaneCommand } from './controlplane.js';
import { devCommand } from './dev.js';
import { nodeCommand } from './node.js';

export const daemonCommands: readonly Command[] = [
  versionCommand,
  devCommand,
  registryCommand,
  nodeCommand,
  controlplaneCommand,
  accountsCommand,
  tokensCommand,
];
