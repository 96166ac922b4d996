/**
 * `unikraft build [DIR] --output REF|DIR|./file.oci.tar [-K Kraftfile]
 *   [--build-arg K=V] [--build-context name=path] [--no-cache] [--target STAGE]
 *   [--rootfs-format cpio|erofs] [--insecure] [--registry HOST] [--mirror HOST]
 *   [-- CMD...]`
 * Prints each step (CACHED when reused), the packaging, and the push on its
 * own line with bytes and time. A thin shell over src/build.
 */
import { parseArgs } from 'node:util';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError, UserError, type Command, type CommandContext } from '../../../util/command.js';
import { buildProject } from '../../../build/exec/project.js';
import { BuildStepError } from '../../../build/exec/executor.js';
import { parseRootfsFormat } from '../../../build/package/initrd.js';

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

export const buildCommand: Command = {
  name: 'build',
  summary: 'build a Dockerfile + Kraftfile into a Unikraft-layout OCI image and push or write it',
  async run(args: string[], ctx: CommandContext): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          output: { type: 'string', short: 'o' },
          kraftfile: { type: 'string', short: 'K' },
          'build-arg': { type: 'string', multiple: true },
          'build-context': { type: 'string', multiple: true },
          'no-cache': { type: 'boolean' },
          target: { type: 'string' },
          'rootfs-format': { type: 'string' },
          insecure: { type: 'boolean' },
          registry: { type: 'string' },
          mirror: { type: 'string', multiple: true },
          arch: { type: 'string' },
          'cache-dir': { type: 'string' },
        },
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const v = parsed.values;
    if (!v.output) throw new UsageError('--output REF|DIR|./file.oci.tar is required');
    if (v.arch && v.arch !== 'x86_64') throw new UsageError(`--arch ${v.arch}: only x86_64 is built here`);
    const [dir = '.', ...cliArgs] = parsed.positionals;
    const epochText = ctx.env.SOURCE_DATE_EPOCH;
    if (epochText !== undefined && !/^\d+$/.test(epochText)) throw new UsageError(`SOURCE_DATE_EPOCH must be whole seconds, got "${epochText}"`);
    const contexts = parseKeyValues(v['build-context'], '--build-context');
    for (const k of Object.keys(contexts)) contexts[k] = resolve(ctx.cwd, contexts[k] as string);
    const started = Date.now();
    const say = (line: string): void => void ctx.stdout.write(`${line}\n`);
    try {
      const res = await buildProject({
        dir,
        cwd: ctx.cwd,
        output: v.output,
        cacheDir: join(v['cache-dir'] ? resolve(ctx.cwd, v['cache-dir']) : defaultCacheDir(ctx.env), 'build'),
        ...(v.kraftfile ? { kraftfile: v.kraftfile } : {}),
        buildArgs: parseKeyValues(v['build-arg'], '--build-arg'),
        buildContexts: contexts,
        noCache: v['no-cache'] ?? false,
        ...(v.target ? { target: v.target } : {}),
        ...(v['rootfs-format'] ? { rootfsFormat: parseRootfsFormat(v['rootfs-format']) } : {}),
        insecure: v.insecure ?? false,
        ...(v.registry ?? ctx.env.UKC_REGISTRY ? { registry: (v.registry ?? ctx.env.UKC_REGISTRY) as string } : {}),
        mirrors: [...(v.mirror ?? []), ...(ctx.env.UKC_REGISTRY_MIRRORS ? ctx.env.UKC_REGISTRY_MIRRORS.split(',') : [])],
        epoch: epochText ? Number(epochText) : 0,
        cliArgs,
        log: say,
        output_: (chunk) => void ctx.stdout.write(chunk),
        signal: ctx.signal,
      });
      const b = res.build;
      if (b) say(`steps: ${b.stepsRun} run, ${b.stepsCached} cached (${b.runStepsExecuted} RUN executed)`);
      for (const w of b?.warnings ?? []) ctx.stderr.write(`warning: ${w}\n`);
      if (res.kernelLess) say('image has no kernel layer (micro instances run it in a Linux sandbox)');
      if (res.pushed) {
        say(`pushed ${res.pushed.ref}  ${formatBytes(res.pushed.bytes)} (${formatBytes(res.pushed.uploaded)} uploaded) in ${res.pushed.ms} ms`);
      } else {
        say(`wrote ${v.output}`);
      }
      say(`image ${res.name} ${res.manifestDigest}  built in ${Date.now() - started} ms`);
      return 0;
    } catch (err) {
      if (err instanceof BuildStepError) throw new UserError(err.message);
      if (err instanceof Error && !(err instanceof UsageError)) throw new UserError(err.message);
      throw err;
    }
  },
};
