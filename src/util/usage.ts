/**
 * Help text generated from the option tables commands parse with, so the two
 * cannot drift: a command declares its options once (parseArgs' fields plus a
 * placeholder and one line of help each), parses with `parseOptions`, and
 * `--help`/`-h` prints `formatHelp` of the same table.
 *
 * `runCommandLine` answers `--help`/`-h` for every command that has a `help`
 * (walking `subcommands` by the leading words first), before the command runs:
 * no command can forget it, and asking for help never starts anything.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError } from './command.js';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  default?: string | boolean;
  /** The value's placeholder in the help (`REF`, `K=V`); string options only. */
  value?: string;
  /** One line: what the option does. */
  help: string;
}

export type OptionTable = Readonly<Record<string, OptionSpec>>;

export interface CommandHelp {
  /** Synopsis after the command's words (`[DIR] --output REF`), one per line. */
  synopsis: string | readonly string[];
  summary: string;
  options?: OptionTable;
  /** Options every form of the command accepts too (the CLI's `-o`, `--profile`, …). */
  globalOptions?: OptionTable;
  /** Subcommands by name; aliases (`ls` for `list`) are not listed. */
  subcommands?: Readonly<Record<string, CommandHelp>>;
  /** Free text after the options (examples, environment variables). */
  notes?: string;
}

/** Thrown (or returned by the dispatcher) when the user asked for help: printed on stdout, exit 0. */
export class HelpRequested extends Error {
  constructor(readonly text: string) {
    super('help requested');
    this.name = 'HelpRequested';
  }
}

const HELP_OPTION: OptionSpec = { type: 'boolean', short: 'h', help: 'show this help and exit' };

function optionLines(table: OptionTable): string[] {
  const rows = Object.entries(table).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.type === 'string' ? ` ${o.value ?? 'VALUE'}` : ''}`;
    const extra = [o.multiple ? 'repeatable' : '', o.default !== undefined && o.default !== false && o.default !== '' ? `default ${String(o.default)}` : ''].filter(Boolean);
    return [flag, extra.length ? `${o.help} (${extra.join('; ')})` : o.help] as const;
  });
  const width = Math.max(0, ...rows.map(([f]) => f.length));
  return rows.map(([f, h]) => `  ${f.padEnd(width)}  ${h}`);
}

/** The help of a command (`words` are the program and command path: `unikraft images import`). */
export function formatHelp(words: string, help: CommandHelp): string {
  const synopsis = typeof help.synopsis === 'string' ? [help.synopsis] : help.synopsis;
  const out: string[] = [];
  out.push(...synopsis.map((s, i) => `${i === 0 ? 'usage: ' : '       '}${words}${s ? ` ${s}` : ''}`));
  out.push('', help.summary);
  const subs = Object.entries(help.subcommands ?? {});
  if (subs.length > 0) {
    const width = Math.max(...subs.map(([n]) => n.length));
    out.push('', 'commands:', ...subs.map(([n, h]) => `  ${n.padEnd(width)}  ${h.summary}`));
    out.push('', `Run \`${words} <command> --help\` for a command's options.`);
  }
  out.push('', 'options:', ...optionLines({ ...(help.options ?? {}), help: HELP_OPTION }));
  if (help.globalOptions && Object.keys(help.globalOptions).length > 0) out.push('', 'global options:', ...optionLines(help.globalOptions));
  if (help.notes) out.push('', help.notes.trimEnd());
  return `${out.join('\n')}\n`;
}

/** Finds the help for `args` (leading words select subcommands) if they ask for it (`--help`/`-h` before `--`); else undefined. */
export function helpFor(words: string, help: CommandHelp, args: readonly string[]): string | undefined {
  let h = help;
  let path = words;
  let i = 0;
  for (; i < args.length; i++) {
    const sub = h.subcommands?.[args[i]!];
    if (!sub) break;
    h = sub;
    path = `${path} ${args[i]}`;
  }
  const end = args.indexOf('--');
  const own = end === -1 ? args.slice(i) : args.slice(i, end);
  if (own.includes('--help') || own.includes('-h') || (h.subcommands !== undefined && args[i] === 'help')) return formatHelp(path, h);
  return undefined;
}

type ParseConfigFor<T extends OptionTable> = { args: string[]; options: T; allowPositionals: true; strict: true };

/** parseArgs over a command's table (and its globals); a wrong flag is a UsageError naming the usage. */
/**
 * `--timeout -1`, `--tail -1`: a negative number after an option that takes a value is that
 * value (node's parser would take it for a flag and refuse it as ambiguous), so it is joined
 * as `--timeout=-1` before parsing. Nothing after `--` is touched.
 */
function joinNegativeValues(args: string[], options: OptionTable): string[] {
  const takesValue = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    if (o.type !== 'string') continue;
    takesValue.add(`--${name}`);
    if (o.short) takesValue.add(`-${o.short}`);
  }
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') return [...out, ...args.slice(i)];
    const next = args[i + 1];
    if (takesValue.has(a) && next !== undefined && /^-\d+(?:\.\d+)?[a-z]*$/i.test(next)) {
      out.push(a.startsWith('--') ? `${a}=${next}` : `${a}${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function parseOptions<T extends OptionTable>(words: string, help: CommandHelp & { options: T }, args: string[]) {
  try {
    const options = { ...(help.globalOptions ?? {}), ...help.options } as T;
    const joined = joinNegativeValues(args, options);
    return parseArgs<ParseConfigFor<T>>({ args: joined, options, allowPositionals: true, strict: true } as ParseConfigFor<T> & ParseArgsConfig);
  } catch (err) {
    const synopsis = typeof help.synopsis === 'string' ? help.synopsis : (help.synopsis[0] ?? '');
    throw new UsageError(`${(err as Error).message}\nusage: ${words} ${synopsis}  (--help for all options)`);
  }
}
