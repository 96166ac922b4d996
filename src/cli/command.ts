/**
 * A `unikraft` command of this package: like util/command's `Command`, but run
 * with a `CliRuntime` (injected clock, transport, global flags). `asCommand`
 * adapts it to the shared table, and is the one place that maps its errors
 * (via `describeFailure`) before runCommandLine prints them.
 */
import type { Command } from '../util/command.js';
import { describeFailure } from './errors.js';
import { makeRuntime, type CliDeps, type CliGlobals, type CliRuntime } from './runtime.js';

export interface CliCommand {
  name: string;
  summary: string;
  run(args: string[], cli: CliRuntime): Promise<number>;
}

export function asCommand(cmd: CliCommand, deps: CliDeps, globals: CliGlobals): Command {
  return {
    name: cmd.name,
    summary: cmd.summary,
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
