// `unikraft`: the CLI. A thin shell over src/client and src/build; see commands.ts.
import { defaultContext, runCommandLine, UsageError, type CommandContext } from '../util/index.js';
import { makeCliCommands } from './commands.js';
import { parseOutputFormat } from './output.js';
import { defaultDeps, type CliDeps } from './deps.js';
import type { CliGlobals } from './global-options.js';

/** Global flags written before the command name (`unikraft -o json instances list`). */
export function splitGlobals(argv: string[]): { globals: CliGlobals; rest: string[] } {
  const globals: CliGlobals = {};
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq !== -1 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const known = ['-o', '--output', '--config', '--profile', '--metro', '--log-level'];
    if (!known.includes(flag)) break;
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`${flag} needs a value`);
    if (flag === '-o' || flag === '--output') globals.format = parseOutputFormat(value);
    else if (flag === '--config') globals.config = value;
    else if (flag === '--profile') globals.profile = value;
    else if (flag === '--metro') globals.metro = value;
  }
  return { globals, rest: argv.slice(i) };
}

export async function main(argv: string[], ctx?: CommandContext, deps: CliDeps = defaultDeps): Promise<number> {
  let split;
  try {
    split = splitGlobals(argv);
  } catch (err) {
    (ctx?.stderr ?? process.stderr).write(`unikraft: ${(err as Error).message}\n`);
    return 2;
  }
  const { globals, rest } = split;
  const base = ctx ?? defaultContext();
  return runCommandLine('unikraft', makeCliCommands(deps, globals), rest, base);
}
export { configPath, loadConfig, saveConfig } from './config.js';
