/**
 * `ukcd registry`: serve the OCI registry, or collect its garbage.
 *
 *   ukcd registry [--listen 127.0.0.1:5000] --data DIR [--no-delete]
 *   ukcd registry gc --data DIR [--dry-run] [--grace-period 1h]
 */
import { parseArgs } from 'node:util';
import { UsageError, type Command, type CommandContext } from '../util/command.js';
import { collectGarbage, DEFAULT_GC_GRACE_PERIOD_MS } from './gc.js';
import { openStores, parseListen, startRegistryServer } from './server.js';

/** Parses `90s`, `15m`, `1h`, `2d` or plain milliseconds. */
export function parseDuration(text: string): number {
  const m = /^(\d{1,12})(ms|s|m|h|d)?$/.exec(text.trim());
  if (!m) throw new UsageError(`invalid duration "${text}": use e.g. 90s, 15m, 1h, 2d`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

async function serve(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      listen: { type: 'string', default: '127.0.0.1:5000' },
      data: { type: 'string' },
      'no-delete': { type: 'boolean', default: false },
      'upload-timeout': { type: 'string' },
    },
    strict: true,
  });
  if (!values.data) throw new UsageError('--data DIR is required');
  let listen;
  try {
    listen = parseListen(values.listen);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const limits = values['upload-timeout'] ? { uploadSessionTimeoutMs: parseDuration(values['upload-timeout']) } : {};
  const srv = await startRegistryServer({
    listen,
    dataDir: values.data,
    deleteEnabled: !values['no-delete'],
    limits,
    logError: (err) => ctx.stderr.write(`registry: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`),
  });
  ctx.stdout.write(`registry listening on ${srv.url}\n`);
  await new Promise<void>((resolve) => {
    if (ctx.signal.aborted) resolve();
    else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
  });
  await srv.close();
  ctx.stdout.write('registry stopped\n');
  return 0;
}

async function gc(args: string[], ctx: CommandContext): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      data: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
      'grace-period': { type: 'string' },
    },
    strict: true,
  });
  if (!values.data) throw new UsageError('--data DIR is required');
  const grace = values['grace-period'] ? parseDuration(values['grace-period']) : DEFAULT_GC_GRACE_PERIOD_MS;
  const { blobs, metadata } = openStores(values.data);
  try {
    const dryRun = values['dry-run'];
    const report = await collectGarbage({ blobs, metadata, gracePeriodMs: grace, dryRun });
    for (const d of report.swept) ctx.stdout.write(`${dryRun ? 'would delete' : 'deleted'} ${d}\n`);
    ctx.stdout.write(
      `marked ${report.marked}, ${dryRun ? 'would sweep' : 'swept'} ${report.swept.length} blobs (${report.bytesFreed} bytes), kept ${report.keptInGrace} within the grace period\n`,
    );
    return 0;
  } finally {
    await metadata.close();
  }
}

export const registryCommand: Command = {
  name: 'registry',
  summary: 'serve the OCI registry (--listen, --data), or `registry gc --data DIR [--dry-run] [--grace-period 1h]`',
  async run(args, ctx) {
    if (args[0] === 'gc') return gc(args.slice(1), ctx);
    if (args[0] === 'serve') return serve(args.slice(1), ctx);
    return serve(args, ctx);
  },
};
