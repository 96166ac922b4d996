/**
 * `unikraft build [DIR] --output REF|DIR|./file.oci.tar [-K Kraftfile]
 *   [--build-arg K=V] [--build-context name=path] [--no-cache] [--target STAGE]
 *   [--rootfs-format cpio|erofs] [--insecure] [--registry HOST] [--mirror HOST]
 *   [-- CMD...]`
 * Prints each step (CACHED when reused), the packaging, and the push on its
 * own line with bytes and time. A thin shell over src/build.
 *
 * The central registry (runtimes, names without a registry, the mirror for
 * Docker Hub names) is --registry, else UKC_REGISTRY, else the profile's —
 * unless --output names a registry itself, which then plays that part (so a
 * push to a node's local registry never touches the central one). The
 * profile's token (or UKC_TOKEN) goes to the platform's registries only
 * (see ../../registry-auth.ts).
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError, UserError } from '../../../util/index.js';
import type { CliCommand } from '../../command.js';
import { parseCommand, type CliRuntime } from '../../runtime.js';
import { registryCredentials } from '../../registry-auth.js';
import { buildProject, type ProjectBuildResult } from '../../../builder/index.js';
import { BuildStepError } from '../../../builder/index.js';
import { parseRootfsFormat } from '../../../builder/index.js';
import { BUILD_HELP, buildSpec } from './help.js';

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.UKC_CACHE_DIR) return resolve(env.UKC_CACHE_DIR);
  return join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'ukc');
}

export function parseKeyValues(list: string[] | undefined, what: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`${what} wants KEY=VALUE, got "${item}"`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

/** True when `--output` is a reference whose first component names a registry host. */
export function outputNamesRegistry(output: string): boolean {
  const first = output.split('/')[0] ?? '';
  return output.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') && !output.startsWith('./') && !output.startsWith('../');
}

/** What a build needs besides the CLI runtime; `build` fills it from flags, `run DIR` from its own. */
export interface CliBuildInput {
  dir: string;
  output: string;
  kraftfile?: string;
  buildArgs?: Record<string, string>;
  buildContexts?: Record<string, string>;
  noCache?: boolean;
  target?: string;
  rootfsFormat?: string;
  insecure?: boolean;
  /** --registry (else UKC_REGISTRY, else the profile's unless the output names a registry). */
  registry?: string;
  mirrors?: string[];
  cacheDir?: string;
  cliArgs?: string[];
  /** Where progress lines go (build: stdout; run: stderr). */
  say: (line: string) => void;
  /** RUN steps' output. */
  stepOutput?: (chunk: Buffer) => void;
}

/**
 * Builds a project with the profile's central registry and token: the one
 * path both `unikraft build` and `unikraft run DIR` take. Prints the push line
 * and the image line; build failures become UserErrors.
 */
export async function buildWithProfile(cli: CliRuntime, input: CliBuildInput): Promise<ProjectBuildResult> {
  const env = cli.env;
  const epochText = env.SOURCE_DATE_EPOCH;
  if (epochText !== undefined && !/^\d+$/.test(epochText)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds, got "${epochText}"`);
  const explicit = input.registry ?? (env.UKC_REGISTRY || undefined);
  const auth = registryCredentials(cli, explicit);
  const central = explicit ?? (outputNamesRegistry(input.output) ? undefined : auth.profileRegistry);
  const started = Date.now();
  const say = input.say;
  try {
    const res = await buildProject({
      dir: input.dir,
      cwd: cli.cwd,
      output: input.output,
      cacheDir: join(input.cacheDir ? resolve(cli.cwd, input.cacheDir) : defaultCacheDir(env), 'build'),
      ...(input.kraftfile ? { kraftfile: input.kraftfile } : {}),
      buildArgs: input.buildArgs ?? {},
      buildContexts: input.buildContexts ?? {},
      noCache: input.noCache ?? false,
      ...(input.target ? { target: input.target } : {}),
      ...(input.rootfsFormat ? { rootfsFormat: parseRootfsFormat(input.rootfsFormat) } : {}),
      insecure: input.insecure ?? false,
      ...(central ? { registry: central } : {}),
      mirrors: [...(input.mirrors ?? []), ...(env.UKC_REGISTRY_MIRRORS ? env.UKC_REGISTRY_MIRRORS.split(',') : [])],
      credentialsFor: auth.credentialsFor,
      epoch: epochText ? Number(epochText) : 0,
      ...(input.cliArgs ? { cliArgs: input.cliArgs } : {}),
      log: say,
      ...(input.stepOutput ? { output_: input.stepOutput } : {}),
      signal: cli.signal,
    });
    const b = res.build;
    if (b) say(`steps: ${b.stepsRun} run, ${b.stepsCached} cached (${b.runStepsExecuted} RUN executed)`);
    for (const w of b?.warnings ?? []) cli.stderr.write(`warning: ${w}\n`);
    if (res.kernelLess) say('image has no kernel layer (micro instances run it in a Linux sandbox)');
    if (res.pushed) {
      say(`pushed ${res.pushed.ref}  ${formatBytes(res.pushed.bytes)} (${formatBytes(res.pushed.uploaded)} uploaded) in ${res.pushed.ms} ms`);
    } else {
      say(`wrote ${input.output}`);
    }
    say(`image ${res.name} ${res.manifestDigest}  built in ${Date.now() - started} ms`);
    return res;
  } catch (err) {
    if (cli.signal.aborted) throw err;
    if (err instanceof BuildStepError) throw new UserError(err.message);
    if (err instanceof Error && !(err instanceof UsageError) && !(err instanceof UserError)) throw new UserError(err.message);
    throw err;
  }
}

async function runBuild(args: string[], cli: CliRuntime): Promise<number> {
  const parsed = parseCommand(cli, 'unikraft build', BUILD_HELP, args);
  const v = parsed.values;
  if (!v.output) throw new UsageError('--output REF|DIR|./file.oci.tar is required');
  if (v.arch && v.arch !== 'x86_64') throw new UsageError(`--arch ${v.arch}: only x86_64 is built here`);
  const [dir = '.', ...cliArgs] = parsed.positionals;
  const contexts = parseKeyValues(v['build-context'], '--build-context');
  for (const k of Object.keys(contexts)) contexts[k] = resolve(cli.cwd, contexts[k] as string);
  await buildWithProfile(cli, {
    dir,
    output: v.output,
    ...(v.kraftfile ? { kraftfile: v.kraftfile } : {}),
    buildArgs: parseKeyValues(v['build-arg'], '--build-arg'),
    buildContexts: contexts,
    noCache: v['no-cache'] ?? false,
    ...(v.target ? { target: v.target } : {}),
    ...(v['rootfs-format'] ? { rootfsFormat: v['rootfs-format'] } : {}),
    insecure: v.insecure ?? false,
    ...(v.registry ? { registry: v.registry } : {}),
    mirrors: v.mirror ?? [],
    ...(v['cache-dir'] ? { cacheDir: v['cache-dir'] } : {}),
    cliArgs,
    say: (line) => void cli.stdout.write(`${line}\n`),
    stepOutput: (chunk) => void cli.stdout.write(chunk),
  });
  return 0;
}

export const buildCommand: CliCommand = {
  ...buildSpec,
  run: runBuild,
};
