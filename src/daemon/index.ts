// `ukcd`: the daemon. Each role is a command; see commands.ts for the table, and config.ts
// for how each role takes its settings (src/config: ukcd.yaml, UKC_<KEY>, --set).
import { runCommandLine } from '../util/index.js';
import { daemonCommands } from './commands.js';

export async function main(argv: string[]): Promise<number> {
  return runCommandLine('ukcd', daemonCommands, argv);
}
