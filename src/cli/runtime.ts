/**
 * What every `unikraft` command gets: the process context (cwd, env, streams,
 * stop signal), injected dependencies (clock, platform transport, sleep) and
 * the global flags (`--config`, `--profile`, `--metro`, `-o`). Commands resolve
 * settings through `cli.settings()` so the error mapper knows where the token
 * came from, and build clients with `nodeApi`/`controlPlane`.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { PlatformClient, type PlatformTransport } from '../client/platform.js';
import { UsageError, UserError, type CommandContext } from '../util/command.js';
import { resolveSettings, type GlobalFlags, type Settings } from './config.js';
import { parseOutputFormat, render, type OutputFormat, type View } from './output.js';

export interface CliDeps {
  now: () => number;
  /** How platform API requests are sent (default node:http). */
  transport?: PlatformTransport;
  sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
}

export const defaultDeps: CliDeps = {
  now: Date.now,
  sleep: (ms, signal) => delay(ms, undefined, signal ? { signal } : {}).then(() => undefined),
};

export interface CliGlobals extends GlobalFlags {
  format?: OutputFormat;
}

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

/** Options every command of ours accepts after its name too. */
export const COMMON_OPTIONS = {
  output: { type: 'string', short: 'o' },
  config: { type: 'string' },
  profile: { type: 'string' },
  metro: { type: 'string' },
  'log-level': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Options = NonNullable<ParseArgsConfig['options']>;

/** parseArgs with the common options; folds them into `cli.globals`; usage errors become UsageError. */
export function parseCommand<T extends Options>(cli: CliRuntime, args: string[], options: T, usage: string) {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { ...COMMON_OPTIONS, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\nusage: ${usage}`);
  }
  const v = parsed.values as Record<string, unknown>;
  if (v.help === true) throw new UsageError(`usage: ${usage}`);
  if (typeof v.output === 'string') cli.globals.format = parseOutputFormat(v.output);
  for (const k of ['config', 'profile', 'metro'] as const) if (typeof v[k] === 'string') cli.globals[k] = v[k] as string;
  return parsed;
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
