/**
 * `unikraft run [DIR] [--image REF] [-n NAME] [-m 512M] [--vcpus N] [-e K=V]
 *   [-p 443:8080[/http+tls]] [--domain D] [--replicas N]
 *   [--scale-to-zero policy=on,cooldown-time=1000,stateful=false]
 *   [--restart never|always|on-failure] [--rm] [--follow] [--dry-run] [-- ARGS...]`
 *
 * Given a directory it builds the project (Dockerfile + Kraftfile), pushes the
 * image to the central registry under your account and runs it — one step, as
 * `kraft cloud deploy .` did. Given `--image` it runs an existing image. Prints
 * one key/value block per instance (three with `--replicas 2`).
 */
import { resolve } from 'node:path';
import { UsageError, UserError } from '../../../util/index.js';
import type { CreateInstanceRequest } from '../../../client/index.js';
import { instancesView } from '../../views.js';
import { parsePortSpecs } from '../../ports.js';
import { nodeApi, parseCommand, print, progress, requireAccount, type CliRuntime } from '../../runtime.js';
import { streamLogs, DEFAULT_LOG_TAIL_BYTES } from '../instances/index.js';
import { parseImageArg } from '../images/index.js';
import type { CliCommand } from '../../command.js';
import { RUN_HELP, runSpec } from './help.js';

/** Seconds `run` waits for every new instance to be running. */
export const RUN_START_TIMEOUT_S = 60;

/** `512M`, `512Mi`, `1G`, `1Gi`, `256` (MiB) → MiB. */
export function parseMemory(text: string): number {
  const m = /^(\d{1,7})\s*(m|mi|mb|mib|g|gi|gb|gib)?$/i.exec(text.trim());
  if (!m) throw new UsageError(`invalid memory "${text}": use e.g. 256M or 1G`);
  const n = Number(m[1]);
  return m[2] !== undefined && m[2].toLowerCase().startsWith('g') ? n * 1024 : n;
}

export function parseEnv(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new UsageError(`-e wants KEY=VALUE, got "${item}"`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

/** `on`, or `policy=on,cooldown-time=1000,stateful=false` (cooldown in ms). */
export function parseScaleToZero(text: string): NonNullable<CreateInstanceRequest['scale_to_zero']> {
  const out: NonNullable<CreateInstanceRequest['scale_to_zero']> = { policy: 'on' };
  for (const part of text.split(',')) {
    const [k, v] = part.includes('=') ? [part.slice(0, part.indexOf('=')), part.slice(part.indexOf('=') + 1)] : ['policy', part];
    if (k === 'policy') {
      if (v !== 'on' && v !== 'off' && v !== 'idle') throw new UsageError(`--scale-to-zero policy must be on, off or idle, got "${v}"`);
      out.policy = v;
    } else if (k === 'cooldown-time' || k === 'cooldown_time_ms') {
      if (!/^\d{1,9}$/.test(v)) throw new UsageError('--scale-to-zero cooldown-time is milliseconds');
      out.cooldown_time_ms = Number(v);
    } else if (k === 'stateful') {
      if (v !== 'true' && v !== 'false') throw new UsageError('--scale-to-zero stateful is true or false');
      out.stateful = v === 'true';
    } else throw new UsageError(`unknown --scale-to-zero key "${k}"`);
  }
  return out;
}

/** Builds DIR and pushes it to the central registry under your account — the same path as `unikraft build --output`. */
async function buildAndPush(cli: CliRuntime, dir: string, buildArgs: Record<string, string>): Promise<{ url: string; name: string }> {
  const s = cli.settings();
  const account = requireAccount(cli);
  if (s.registry === undefined) throw new UsageError(`profile ${s.profileName ?? '(none)'} names no central registry: run \`ukcd dev\` or \`unikraft login\``);
  const path = resolve(cli.cwd, dir);
  // The builder loads only when `run` is given a directory (`run --image` never builds).
  const [{ projectImageName }, { buildWithProfile }] = await Promise.all([import('../../../builder/index.js'), import('../build/index.js')]);
  const name = await projectImageName(path).catch((err: unknown) => {
    throw new UserError(`cannot read the project in ${dir}: ${err instanceof Error ? err.message : String(err)}`);
  });
  const url = `${s.registry}/${account}/${name}:latest`;
  progress(cli, `building ${path} → ${url}`);
  await buildWithProfile(cli, { dir: path, output: url, buildArgs, say: (line) => progress(cli, line) }).catch((err: unknown) => {
    if (cli.signal.aborted || err instanceof UsageError) throw err;
    throw new UserError(`build of ${dir} failed: ${err instanceof Error ? err.message : String(err)}`);
  });
  return { url, name };
}

export const runCommand: CliCommand = {
  ...runSpec,
  async run(args, cli) {
    const dashdash = args.indexOf('--');
    const own = dashdash === -1 ? args : args.slice(0, dashdash);
    const appArgs = dashdash === -1 ? undefined : args.slice(dashdash + 1);
    const parsed = parseCommand(cli, 'unikraft run', RUN_HELP, own);
    const v = parsed.values;
    const [dir, ...extra] = parsed.positionals;
    if (extra.length > 0) throw new UsageError(`unexpected arguments ${extra.join(' ')} (put the app's arguments after --)`);
    if (dir !== undefined && v.image !== undefined) throw new UsageError('give a directory to build or --image, not both');
    if (dir === undefined && v.image === undefined) throw new UsageError('give a directory to build, or --image REF (see unikraft run --help)');

    const req: CreateInstanceRequest = { image: '', autostart: true, timeout_s: RUN_START_TIMEOUT_S };
    if (v.name !== undefined) req.name = v.name;
    if (v.memory !== undefined) req.memory_mb = parseMemory(v.memory);
    if (v.vcpus !== undefined) {
      if (!/^\d{1,3}$/.test(v.vcpus)) throw new UsageError('--vcpus is a whole number');
      req.vcpus = Number(v.vcpus);
    }
    if (v.env) req.env = parseEnv(v.env);
    if (appArgs && appArgs.length > 0) req.args = appArgs;
    if (v.replicas !== undefined) {
      if (!/^\d{1,4}$/.test(v.replicas)) throw new UsageError('--replicas is a whole number');
      req.replicas = Number(v.replicas);
    }
    if (v.restart !== undefined) {
      if (v.restart !== 'never' && v.restart !== 'always' && v.restart !== 'on-failure') throw new UsageError('--restart is never, always or on-failure');
      req.restart_policy = v.restart;
    }
    if (v.rm === true) req.features = ['delete-on-stop'];
    const published = [...(v.publish ?? []), ...(v.port ?? [])];
    if (published.length > 0) {
      const group: Record<string, unknown> = { services: parsePortSpecs(published) };
      if (v.domain) group.domains = v.domain.map((name) => ({ name }));
      req.service_group = group;
    } else if (v.domain) throw new UsageError('--domain needs a -p port to serve');
    if (v['scale-to-zero'] !== undefined) req.scale_to_zero = parseScaleToZero(v['scale-to-zero']);

    const s = cli.settings();
    const account = requireAccount(cli);
    let url: string;
    if (v.image !== undefined) {
      const { repository, tag, digest } = parseImageArg(v.image, account);
      const domain = v.image.split('/').length > 1 && /[.:]|^localhost$/.test(v.image.split('/')[0]!) ? v.image.split('/')[0]! : s.registry;
      // A digest pins the image (its tag, if given too, is only a label); otherwise the tag, `latest` by default.
      url = `${domain ? `${domain}/` : ''}${repository}${digest !== undefined ? `@${digest}` : `:${tag ?? 'latest'}`}`;
    } else if (v['dry-run'] === true) {
      url = `${s.registry ?? ''}/${account}/<built from ${dir}>:latest`;
    } else {
      url = (await buildAndPush(cli, dir!, parseEnv(v['build-arg'] ?? []))).url;
    }
    req.image = s.token ? { url, credentials: { username: account, password: s.token } } : url;
    if (v['dry-run'] === true) {
      const shown = { ...req, image: url };
      cli.stdout.write(`${JSON.stringify(shown, null, 2)}\n`);
      return 0;
    }
    const { api, metro } = nodeApi(cli);
    progress(cli, `starting ${url} on ${metro}`);
    const created = await api.createInstance(req, cli.signal);
    print(cli, instancesView(created, metro, cli.deps.now()), 'kv');
    if (v.follow === true) await streamLogs(cli, api, created, { follow: true, tail: DEFAULT_LOG_TAIL_BYTES, prefix: created.length > 1 });
    return 0;
  },
};
