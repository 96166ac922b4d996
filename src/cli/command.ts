/**
 * A `unikraft` command of this package: like util/command's `Command`, but run
 * with a `CliRuntime` (injected clock, transport, global flags). `asCommand`
 * adapts it to the shared table, and is the one place that maps its errors
 * (via `describeFailure`) before runCommandLine prints them.
 */
import type { Command } from '../util/index.js';
import type { CommandHelp } from '../util/index.js';
import { describeFailure } from './errors.js';
import { GLOBAL_OPTIONS, makeRuntime, type CliDeps, type CliGlobals, type CliRuntime } from './runtime.js';

/** The help with the global options shown on it and on every subcommand (unless one declares its own, as `images import` does: its -o is --output). */
function withGlobals(help: CommandHelp): CommandHelp {
  const subs = help.subcommands ? Object.fromEntries(Object.entries(help.subcommands).map(([n, h]) => [n, withGlobals(h)])) : undefined;
  return { ...help, globalOptions: help.globalOptions ?? GLOBAL_OPTIONS, ...(subs ? { subcommands: subs } : {}) };
}

export interface CliCommand {
  name: string;
  /** The real CLI's other names for the command (`img`, `vm`, `svc`, ...). */
  aliases?: readonly string[];
  summary: string;
  help: CommandHelp;
  run(args: string[], cli: CliRuntime): Promise<number>;
}

export function asCommand(cmd: CliCommand, deps: CliDeps, globals: CliGlobals): Command {
  return {
    name: cmd.name,
    ...(cmd.aliases ? { aliases: cmd.aliases } : {}),
    summary: cmd.summary,
    help: withGlobals(cmd.help),
    async run(args, ctx) {
      const cli = makeRuntime(ctx, deps, { ...globals });
      try {
        return await cmd.run(args, cli);
      } catch (err) {
        throw describeFailure(err, cli.resolved);
      }
    },
  };
}
