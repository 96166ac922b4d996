/**
 * A `unikraft` command of this package: like util/command's `Command`, but run
 * with a `CliRuntime` (injected clock, transport, global flags). `asCommand`
 * adapts it to the shared table, and is the one place that maps its errors
 * (via `describeFailure`) before runCommandLine prints them.
 *
 * Invariant (issue 14 item 8): the table holds each command's name, aliases and
 * help as pure data (`CliCommandSpec`, in the command folder's help.ts) and
 * loads its implementation, the runtime and the error mapper with a dynamic
 * `import()` only when it runs. So `unikraft --help`, `<cmd> --help` and
 * `version` load neither the client, oci, the builder nor yaml (26 modules
 * instead of 91 plus yaml): measured 2026-12-07, `--help` went from 7.1× to
 * 2.3× the CPU time of a bare `node -e 0` (bench/README.md, "cli"). Nothing
 * imported by this file or by a help.ts may import those (start.test.ts).
 */
import type { Command } from '../util/index.js';
import type { CommandHelp } from '../util/index.js';
import type { CliDeps } from './deps.js';
import { GLOBAL_OPTIONS, type CliGlobals } from './global-options.js';
import type { CliRuntime } from './runtime.js';

/** The help with the global options shown on it and on every subcommand (unless one declares its own, as `images import` does: its -o is --output). */
function withGlobals(help: CommandHelp): CommandHelp {
  const subs = help.subcommands ? Object.fromEntries(Object.entries(help.subcommands).map(([n, h]) => [n, withGlobals(h)])) : undefined;
  return { ...help, globalOptions: help.globalOptions ?? GLOBAL_OPTIONS, ...(subs ? { subcommands: subs } : {}) };
}

/** What the command list and `--help` show: pure data, loaded on every start. */
export interface CliCommandSpec {
  name: string;
  /** The real CLI's other names for the command (`img`, `vm`, `svc`, ...). */
  aliases?: readonly string[];
  summary: string;
  help: CommandHelp;
}

export interface CliCommand extends CliCommandSpec {
  run(args: string[], cli: CliRuntime): Promise<number>;
}

/** A table entry: the spec, and the implementation loaded (a dynamic `import()`) only when the command runs. */
export interface LazyCliCommand extends CliCommandSpec {
  load(): Promise<CliCommand>;
}

export function asCommand(cmd: LazyCliCommand | CliCommand, deps: CliDeps, globals: CliGlobals): Command {
  return {
    name: cmd.name,
    ...(cmd.aliases ? { aliases: cmd.aliases } : {}),
    summary: cmd.summary,
    help: withGlobals(cmd.help),
    async run(args, ctx) {
      const [impl, { makeRuntime }, { describeFailure }] = await Promise.all(['load' in cmd ? cmd.load() : cmd, import('./runtime.js'), import('./errors.js')]);
      const cli = makeRuntime(ctx, deps, { ...globals });
      try {
        return await impl.run(args, cli);
      } catch (err) {
        throw describeFailure(err, cli.resolved);
      }
    },
  };
}
