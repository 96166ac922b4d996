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
  /** Other names the command answers to (`img` for `images`); shown in the command list. */
  aliases?: readonly string[];
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
  const lines = commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}${c.aliases?.length ? ` (also: ${c.aliases.join(', ')})` : ''}`);
  return `usage: ${program} <command> [options]\n\ncommands:\n${lines.join('\n')}\n\n\`${program} help <command>\` or \`${program} <command> --help\` shows a command's options.\n`;
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps) between two short words. */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1);
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest of `names` to a mistyped `word`, if one is close enough to be what was meant. */
export function closest(word: string, names: readonly string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of names) {
    const d = name.startsWith(word) && word.length >= 2 ? 0 : distance(word, name);
    if (best === undefined || d < best.d) best = { name, d };
  }
  return best !== undefined && best.d <= Math.max(1, Math.floor(word.length / 3)) ? best.name : undefined;
}

function isAbortError(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err as { code?: unknown }).code === 'ABORT_ERR');
}

/** The command called `name` or answering to it as an alias. */
function findCommand(commands: readonly Command[], name: string): Command | undefined {
  return commands.find((c) => c.name === name) ?? commands.find((c) => c.aliases?.includes(name));
}

/** Dispatches argv to a command and maps any error to an exit code and one message. */
export async function runCommandLine(
  program: string,
  commands: readonly Command[],
  argv: string[],
  ctx: CommandContext = defaultContext(),
): Promise<number> {
  let [name, ...rest] = argv;
  // `help <command> [sub]` is `<command> [sub] --help`.
  if (name === 'help' && rest.length > 0) {
    name = rest[0];
    rest = [...rest.slice(1), '--help'];
  }
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    ctx.stdout.write(usage(program, commands));
    return name === undefined ? 2 : 0;
  }
  const command = findCommand(commands, name);
  if (!command) {
    const guess = closest(name, commands.flatMap((c) => [c.name, ...(c.aliases ?? [])]));
    ctx.stderr.write(`${program}: unknown command "${name}"${guess !== undefined ? `; did you mean "${guess}"?` : ''}\n${usage(program, commands)}`);
    return 2;
  }
  name = command.name;
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
    // Ctrl-C (or SIGTERM) is the one way out of a long command: whatever it threw while
    // stopping (an AbortError, a cut stream), the user asked for it, so the answer is
    // "interrupted" and the shell's 130. A UserError keeps its own message.
    if (isAbortError(err) || (ctx.signal.aborted && !(err instanceof UserError))) {
      ctx.stderr.write(`${program} ${name}: interrupted\n`);
      return 130;
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
