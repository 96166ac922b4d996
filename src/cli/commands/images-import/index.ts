/**
 * `unikraft images import <dir|tarball> --output REF|DIR|file.oci.tar
 *   [--env K=V] [--cmd WORD]... [--entrypoint WORD]... [--label K=V]
 *   [--compression gzip|none] [--insecure]`
 * Turns a root filesystem into a plain OCI image (os linux, arch amd64) usable
 * in FROM — base images without the internet (see scripts/make-python-base.sh).
 * A push to one of the platform's registries carries the profile's token
 * (see ../../registry-auth.ts); to any other registry, none.
 */
import { join, resolve } from 'node:path';
import { UsageError, UserError } from '../../../util/index.js';
import type { CliCommand } from '../../command.js';
import { parseCommand } from '../../runtime.js';
import { registryCredentials } from '../../registry-auth.js';
import { BlobDir } from '../../../builder/index.js';
import { importRootfs } from '../../../builder/index.js';
import { parseOutput, pushToRegistry, writeLayout, writeLayoutArchive } from '../../../builder/index.js';
import { parseReference } from '../../../oci/index.js';
import { RegistryClient } from '../../../client/index.js';
import { defaultCacheDir, parseKeyValues } from '../build/index.js';
import { IMPORT_HELP, imagesImportSpec } from './help.js';

export const imagesImportCommand: CliCommand = {
  ...imagesImportSpec,
  async run(args, cli) {
    const parsed = parseCommand(cli, 'unikraft images import', IMPORT_HELP, args);
    const v = parsed.values;
    const source = parsed.positionals[0];
    if (!source || parsed.positionals.length > 1) throw new UsageError('give one root filesystem: a directory or a tarball');
    if (!v.output) throw new UsageError('--output REF|DIR|file.oci.tar is required');
    const compression = v.compression ?? 'gzip';
    if (compression !== 'gzip' && compression !== 'none') throw new UsageError('--compression is gzip or none');
    const epoch = cli.env.SOURCE_DATE_EPOCH && /^\d+$/.test(cli.env.SOURCE_DATE_EPOCH) ? Number(cli.env.SOURCE_DATE_EPOCH) : 0;
    const target = parseOutput(v.output, cli.cwd);
    const ref = target.kind === 'registry' ? parseReference(target.ref) : undefined;
    const started = Date.now();
    try {
      const image = await importRootfs(resolve(cli.cwd, source), {
        blobs: new BlobDir(join(defaultCacheDir(cli.env), 'build', 'blobs')),
        epoch,
        compression,
        ...(v.env ? { env: v.env } : {}),
        ...(v.cmd ? { cmd: v.cmd } : {}),
        ...(v.entrypoint ? { entrypoint: v.entrypoint } : {}),
        ...(v.workdir ? { workingDir: v.workdir } : {}),
        labels: parseKeyValues(v.label, '--label'),
        refName: ref?.tag ?? 'latest',
      });
      if (target.kind === 'layout') await writeLayout(target.dir, image, 'latest');
      else if (target.kind === 'archive') await writeLayoutArchive(target.file, image, 'latest');
      else if (ref) {
        const credentials = registryCredentials(cli).credentialsFor(ref.domain);
        const client = new RegistryClient({ host: ref.domain, insecure: v.insecure ?? false, ...(credentials ? { credentials } : {}) });
        try {
          const pushed = await pushToRegistry(client, ref.path, ref.tag ?? 'latest', image);
          cli.stdout.write(`pushed ${ref.domain}/${ref.path}:${ref.tag ?? 'latest'}@${pushed.digest.text}  ${image.layer.size} bytes layer in ${Date.now() - started} ms\n`);
        } finally {
          client.close();
        }
        return 0;
      }
      cli.stdout.write(`wrote ${v.output} (${image.manifest.digest.text})\n`);
      return 0;
    } catch (err) {
      if (err instanceof UsageError || err instanceof UserError) throw err;
      throw new UserError((err as Error).message);
    }
  },
};
