// `unikraft`: the CLI. A thin shell over src/client and src/build; see commands.ts.
import { defaultContext, runCommandLine, UsageError, type CommandContext } from '../util/command.js';
import { makeCliCommands } from './commands.js';
import { resolveSettings } from './config.js';
import { parseOutputFormat } from './output.js';
import { defaultDeps, type CliDeps, type CliGlobals } from './runtime.js';

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

function outputNamesRegistry(args: string[]): boolean {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const value = a === '--output' || a === '-o' ? args[i + 1] : a.startsWith('--output=') ? a.slice('--output='.length) : undefined;
    if (value === undefined) continue;
    const first = value.split('/')[0] ?? '';
    return value.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
  }
  return false;
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
  const env = { ...base.env };
  // `unikraft build` (the build front end) reads the central registry from UKC_REGISTRY: give it the
  // profile's, unless --output names a registry itself (then that one serves runtimes too, and a push
  // to a node's local registry never touches the central one).
  if (rest[0] === 'build' && env.UKC_REGISTRY === undefined && !outputNamesRegistry(rest)) {
    try {
      const registry = resolveSettings(env, globals).registry;
      if (registry !== undefined) env.UKC_REGISTRY = registry;
    } catch {
      // no usable config: build runs without a default registry
    }
  }
  return runCommandLine('unikraft', makeCliCommands(deps, globals), rest, { ...base, env });
}
