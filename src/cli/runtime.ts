/**
 * What every `unikraft` command gets: the process context (cwd, env, streams,
 * stop signal), injected dependencies (clock, platform transport, sleep) and
 * the global flags (`--config`, `--profile`, `--metro`, `-o`). Commands resolve
 * settings through `cli.settings()` so the error mapper knows where the token
 * came from, and build clients with `nodeApi`/`controlPlane`.
 */
import { PlatformClient } from '../client/index.js';
import { closest, UsageError, UserError, type CommandContext } from '../util/index.js';
import { resolveSettings, type Settings } from './config.js';
import { parseOptions, type CommandHelp, type OptionTable } from '../util/index.js';
import { parseOutputFormat, render, type View } from './output.js';
import type { CliDeps } from './deps.js';
import { GLOBAL_OPTIONS, type CliGlobals } from './global-options.js';

export { defaultDeps, type CliDeps } from './deps.js';
export { GLOBAL_OPTIONS, type CliGlobals } from './global-options.js';

export interface CliRuntime extends CommandContext {
  deps: CliDeps;
  globals: CliGlobals;
  /** The settings resolved last (for error messages). */
  resolved?: Settings;
  settings(): Settings;
}

export function makeRuntime(ctx: CommandContext, deps: CliDeps, globals: CliGlobals): CliRuntime {
  const rt: CliRuntime = {
    ...ctx,
    deps,
    globals,
    settings() {
      rt.resolved ??= resolveSettings(ctx.env, globals);
      return rt.resolved;
    },
  };
  return rt;
}

/** parseArgs over the command's table plus the global options; folds the globals into `cli.globals`. */
export function parseCommand<T extends OptionTable>(cli: CliRuntime, words: string, help: CommandHelp & { options: T }, args: string[]) {
  const globals: OptionTable = help.globalOptions ?? GLOBAL_OPTIONS;
  const parsed = parseOptions(words, { ...help, globalOptions: globals }, args);
  const v = parsed.values as Record<string, unknown>;
  // Only flags that are global here (build's --output is its own, not the format).
  const isGlobal = (k: string): boolean => Object.hasOwn(globals, k) && !Object.hasOwn(help.options, k);
  if (isGlobal('output') && typeof v.output === 'string') cli.globals.format = parseOutputFormat(v.output);
  for (const k of ['config', 'profile', 'metro'] as const) if (isGlobal(k) && typeof v[k] === 'string') cli.globals[k] = v[k] as string;
  return parsed;
}

/**
 * Dispatches a command group: `args[0]` names the subcommand (or an alias);
 * answers its name, help and the remaining arguments.
 */
/** Verbs every group answers to under the real CLI's other names. */
const VERB_ALIASES: Readonly<Record<string, readonly string[]>> = {
  list: ['ls'],
  get: ['show', 'inspect'],
  create: ['new'],
  delete: ['rm', 'remove'],
};

export function subcommand<S extends string>(words: string, help: CommandHelp & { subcommands: Readonly<Record<S, CommandHelp>> }, args: string[], aliases: Readonly<Record<string, NoInfer<S>>> = {}): { name: S; help: CommandHelp & { options: OptionTable }; rest: string[] } {
  const [first, ...rest] = args;
  const subs = help.subcommands as Readonly<Record<string, CommandHelp>>;
  // The real CLI's verbs for every group: ls, show/inspect, new, rm/remove.
  const verbs: Record<string, string> = {};
  for (const [verb, names] of Object.entries(VERB_ALIASES)) if (Object.hasOwn(subs, verb)) for (const n of names) verbs[n] = verb;
  const all: Readonly<Record<string, string>> = { ...verbs, ...aliases };
  const name = first === undefined ? undefined : Object.hasOwn(subs, first) ? (first as S) : Object.hasOwn(all, first) ? (all[first] as S) : undefined;
  if (name === undefined) {
    const known = Object.keys(subs).join(', ');
    const guess = first === undefined ? undefined : closest(first, [...Object.keys(subs), ...Object.keys(all)]);
    const hint = guess !== undefined ? `; did you mean "${guess}"?` : '';
    throw new UsageError(`${first === undefined ? 'missing subcommand' : `unknown subcommand "${first}"${hint}`} (one of: ${known}); see \`${words} --help\``);
  }
  const chosen = subs[name]!;
  return { name, help: { ...chosen, options: chosen.options ?? {} }, rest };
}

export function print(cli: CliRuntime, view: View, defaultFormat: 'kv' | 'table'): void {
  cli.stdout.write(render(view, cli.globals.format ?? defaultFormat));
}

/** A line of progress on stderr (never on stdout, which carries results). */
export function progress(cli: CliRuntime, line: string): void {
  if (cli.globals.format === 'quiet' || cli.globals.format === 'json' || cli.globals.format === 'yaml') return;
  cli.stderr.write(`${line}\n`);
}

function client(cli: CliRuntime, baseUrl: string, token: string | undefined): PlatformClient {
  return new PlatformClient({ baseUrl, ...(token !== undefined ? { token } : {}), ...(cli.deps.transport ? { transport: cli.deps.transport } : {}) });
}

/** The node API of the selected metro. */
export function nodeApi(cli: CliRuntime): { api: PlatformClient; metro: string } {
  const s = cli.settings();
  if (s.metroApi === undefined || s.metro === undefined) {
    const known = Object.keys(s.profile?.metros ?? {});
    throw new UserError(
      s.metro !== undefined
        ? `unknown metro "${s.metro}"${known.length ? ` (known: ${known.join(', ')})` : ''}: set UKC_METRO to a metro name or a node API URL`
        : `no metro configured in ${s.configPath}: start one with \`ukcd dev\`, run \`unikraft login\`, or set UKC_METRO`,
    );
  }
  return { api: client(cli, s.metroApi, s.token), metro: s.metro };
}

export function controlPlane(cli: CliRuntime): PlatformClient {
  const s = cli.settings();
  if (s.controlplane === undefined) throw new UserError(`no control plane in profile ${s.profileName ?? '(none)'} of ${s.configPath}: run \`ukcd dev\` or \`unikraft login --controlplane URL\``);
  return client(cli, s.controlplane, s.token);
}

export function requireAccount(cli: CliRuntime): string {
  const s = cli.settings();
  if (s.account === undefined) throw new UserError(`profile ${s.profileName ?? '(none)'} names no account: run \`unikraft login --token TOKEN\``);
  return s.account;
}

/** Parses `30s`, `5m`, `1h`, `500ms`, plain seconds; `-1` = forever. */
export function parseTimeout(text: string): number {
  if (text === '-1') return -1;
  const m = /^(\d{1,9})(ms|s|m|h)?$/.exec(text);
  if (!m) throw new UsageError(`invalid duration "${text}": use e.g. 500ms, 30s, 5m`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(m[1]) * unit;
}
