/**
 * `ukcd controlplane --listen 127.0.0.1:7000 --data DIR [--registry-name HOST] [--public-url URL]
 *                   [--tls-cert FILE --tls-key FILE] [--config PATH] [--set KEY=VALUE]...`:
 * the central registry (/v2) and the control plane API (/v1 images, metros,
 * nodes, auth). The root token is written to DIR/root-token on first start.
 */
import { CONFIG_OPTIONS, parseOptions, type CommandHelp } from '../util/index.js';
import { UsageError, type Command } from '../util/index.js';
import { parseListen } from '../registry/index.js';
import { startControlPlane } from '../controlplane/index.js';
import { parsePublicUrl, TLS_OPTIONS, tlsFromOptions } from '../util/index.js';
import { LOG_OPTIONS, roleLogger } from '../log/index.js';
import { controlPlaneSettings, logLevelFlag, logLevelOf, roleConfig, shutdownDeadlineOf } from './config.js';

export const CONTROLPLANE_HELP = {
  synopsis: '--data DIR [--listen 127.0.0.1:7000] [--registry-name HOST] [--public-url URL] [--tls-cert FILE --tls-key FILE]',
  summary: 'run the control plane: central registry (/v2) and /v1 images, metros, nodes',
  options: {
    listen: { type: 'string', default: '127.0.0.1:7000', value: 'HOST:PORT', help: 'address of the API and central registry' },
    data: { type: 'string', value: 'DIR', help: 'data directory (required); the root token is written there' },
    'registry-name': { type: 'string', value: 'HOST', help: 'the name the central registry is reached by (default the public URL\'s host, else the listen address)' },
    'public-url': { type: 'string', value: 'URL', help: 'the URL clients reach it by, for the registry token realm (default the listen address)' },
    ...TLS_OPTIONS,
    ...LOG_OPTIONS,
    ...CONFIG_OPTIONS,
  },
} as const satisfies CommandHelp;

export const controlplaneCommand: Command = {
  name: 'controlplane',
  summary: CONTROLPLANE_HELP.summary,
  help: CONTROLPLANE_HELP,
  async run(args, ctx) {
    const { values } = parseOptions('ukcd controlplane', CONTROLPLANE_HELP, args);
    if (!values.data) throw new UsageError('--data DIR is required');
    const config = roleConfig(values, ctx, [logLevelFlag(values['log-level'])]);
    let listen;
    try {
      listen = parseListen(values.listen);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const publicUrl = values['public-url'] !== undefined ? parsePublicUrl(values['public-url']) : undefined;
    const tls = tlsFromOptions(values);
    const logger = roleLogger('controlplane', logLevelOf(config), ctx.stderr);
    const cp = await startControlPlane({
      dataDir: values.data,
      ...controlPlaneSettings(config),
      ...(publicUrl !== undefined ? { publicUrl } : {}),
      ...(tls ? { tls } : {}),
      host: listen.host,
      port: listen.port,
      ...(values['registry-name'] ? { registryName: values['registry-name'] } : {}),
      logger,
    });
    const reachedAt = cp.publicUrl !== cp.url ? `, reached at ${cp.publicUrl}` : '';
    ctx.stdout.write(`control plane listening on ${cp.url}${reachedAt} (registry ${cp.registryHost}); root token in ${cp.rootTokenFile}\n`);
    await new Promise<void>((resolve) => {
      if (ctx.signal.aborted) resolve();
      else ctx.signal.addEventListener('abort', () => resolve(), { once: true });
    });
    const deadlineMs = shutdownDeadlineOf(config);
    ctx.stdout.write(`control plane draining (up to ${deadlineMs / 1000} s for requests in flight)\n`);
    await cp.close({ deadlineMs });
    ctx.stdout.write('control plane stopped\n');
    return 0;
  },
};
