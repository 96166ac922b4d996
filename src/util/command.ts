/**
 * The shape every executable command has (both `unikraft` and `ukcd`): a name,
 * a one-line summary and a `run` that takes its arguments and an I/O context.
 * Commands throw typed errors and never call `process.exit`; exactly one place
 * (`runCommandLine`) maps errors to exit codes and messages.
 */
import type { Writable } from 'node:stream';
import { formatHelp, helpFor, HelpRequested, type CommandHelp } from './usage.js';

export interface CommandContext {
  cwd: string;
  env: NodeJS.ProcessEnv;
  stdout: Writable;
  stderr: Writable;
  /** Resolves when the user asks the process to stop (SIGINT/SIGTERM). */
  signal: AbortSignal;
}

export interface Command {
  name: string;
  summary: string;
  /** Usage, options and subcommands: `--help`/`-h` prints it (see usage.ts); commands parse with the same tables. */
  help?: CommandHelp;
  /** Resolves to the exit code (0 on success). */
  run(args: string[], ctx: CommandContext): Promise<number>;
}

/** A mistake in how the command was called: exit code 2, message without a stack. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** An expected failure with a message meant for the user: exit code 1, no stack. */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'UserError';
  }
}

export function defaultContext(): CommandContext {
  const ac = new AbortController();
  const stop = (): void => ac.abort();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  return { cwd: process.cwd(), env: process.env, stdout: process.stdout, stderr: process.stderr, signal: ac.signal };
}

function usage(program: string, commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return `usage: ${program} <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

/** Dispatches argv to a command and maps any error to an exit code and one message. */
export async function runCommandLine(
  program: string,
  commands: readonly Command[],
  argv: string[],
  ctx: CommandContext = defaultContext(),
): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    ctx.stdout.write(usage(program, commands));
    return name === undefined ? 2 : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    ctx.stderr.write(`${program}: unknown command "${name}"\n${usage(program, commands)}`);
    return 2;
  }
  const words = `${program} ${name}`;
  const help = command.help ? helpFor(words, command.help, rest) : rest.length === 1 && (rest[0] === '--help' || rest[0] === '-h') ? formatHelp(words, { synopsis: '', summary: command.summary }) : undefined;
  if (help !== undefined) {
    ctx.stdout.write(help);
    return 0;
  }
  try {
    return await command.run(rest, ctx);
  } catch (err) {
    if (err instanceof HelpRequested) {
      ctx.stdout.write(err.text);
      return 0;
    }
    if (err instanceof UsageError) {
      ctx.stderr.write(`${program} ${name}: ${err.message}\n`);
      return 2;
    }
    if (err instanceof UserError) {
      ctx.stderr.write(`${program} ${name}: ${err.message}\n`);
      return err.exitCode;
    }
    const msg = err instanceof Error ? (err.stack ?? err.message) : String(err);
    ctx.stderr.write(`${program} ${name}: internal error: ${msg}\n`);
    return 1;
  }
}
