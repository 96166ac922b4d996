// `unikraft`: the CLI. A thin shell over src/client and src/build; see commands.ts.
import { runCommandLine } from '../util/command.js';
import { cliCommands } from './commands.js';

export async function main(argv: string[]): Promise<number> {
  return runCommandLine('unikraft', cliCommands, argv);
}
