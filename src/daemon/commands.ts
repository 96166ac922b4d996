// The table of `ukcd` roles. Each entry lives in its own module.
import { accountsCommand, tokensCommand } from './accounts-command.js';
import type { Command } from '../util/index.js';
import { versionCommand } from '../util/index.js';
import { controlplaneCommand } from './controlplane.js';
import { devCommand } from './dev.js';
import { nodeCommand } from './node.js';
import { configCommand, daemonRegistryCommand } from './config.js';

export const daemonCommands: readonly Command[] = [
  versionCommand,
  devCommand,
  daemonRegistryCommand,
  nodeCommand,
  controlplaneCommand,
  accountsCommand,
  tokensCommand,
  configCommand,
];
