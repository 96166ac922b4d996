/**
 * `unikraft images import <dir|tarball> --output REF|DIR|file.oci.tar
 *   [--env K=V] [--cmd WORD]... [--entrypoint WORD]... [--label K=V]
 *   [--compression gzip|none] [--insecure]`
 * Turns a root filesystem into a plain OCI image (os linux, arch amd64) usable
 * in FROM — base images without the internet (see scripts/make-python-base.sh).
 */
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { UsageError, UserError, type Command, type CommandContext } from '../../../util/command.js';
import { BlobDir } from '../../../build/package/blobs.js';
import { importRootfs } from '../../../build/package/import.js';
import { parseOutput, pushToRegistry, writeLayout, writeLayoutArchive } from '../../../build/package/output.js';
import { parseReference } from '../../../oci/reference.js';
import { RegistryClient } from '../../../client/registry-client.js';
import { defaultCacheDir, parseKeyValues } from '../build/index.js';

export const imagesImportCommand: Command = {
  name: 'import',
  summary: 'turn a root filesystem (dir or tarball) into an OCI image usable in FROM',
  async run(args: string[], ctx: CommandContext): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({
        args,
        allowPositionals: true,
        options: {
          output: { type: 'string', short: 'o' },
          env: { type: 'string', multiple: true },
          cmd: { type: 'string', multiple: true },
          entrypoint: { type: 'string', multiple: true },
          label: { type: 'string', multiple: true },
          workdir: { type: 'string' },
          compression: { type: 'string' },
          insecure: { type: 'boolean' },
        },
      });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const v = parsed.values;
    const source = parsed.positionals[0];
    if (!source || parsed.positionals.length > 1) throw new UsageError('give one root filesystem: a directory or a tarball');
    if (!v.output) throw new UsageError('--output REF|DIR|file.oci.tar is required');
    const compression = v.compression ?? 'gzip';
    if (compression !== 'gzip' && compression !== 'none') throw new UsageError('--compression is gzip or none');
    const epoch = ctx.env.SOURCE_DATE_EPOCH && /^\d+$/.test(ctx.env.SOURCE_DATE_EPOCH) ? Number(ctx.env.SOURCE_DATE_EPOCH) : 0;
    const target = parseOutput(v.output, ctx.cwd);
    const ref = target.kind === 'registry' ? parseReference(target.ref) : undefined;
    const started = Date.now();
    try {
      const image = await importRootfs(resolve(ctx.cwd, source), {
        blobs: new BlobDir(join(defaultCacheDir(ctx.env), 'build', 'blobs')),
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
        const client = new RegistryClient({ host: ref.domain, insecure: v.insecure ?? false });
        const pushed = await pushToRegistry(client, ref.path, ref.tag ?? 'latest', image);
        ctx.stdout.write(`pushed ${ref.domain}/${ref.path}:${ref.tag ?? 'latest'}@${pushed.digest.text}  ${image.layer.size} bytes layer in ${Date.now() - started} ms\n`);
        return 0;
      }
      ctx.stdout.write(`wrote ${v.output} (${image.manifest.digest.text})\n`);
      return 0;
    } catch (err) {
      if (err instanceof UsageError) throw err;
      throw new UserError((err as Error).message);
    }
  },
};

/** `unikraft images <sub>`: only `import` lives here; other image commands belong to the platform CLI. */
export const imagesCommand: Command = {
  name: 'images',
  summary: 'images import: make a FROM-able OCI image from a root filesystem',
  async run(args: string[], ctx: CommandContext): Promise<number> {
    const [sub, ...rest] = args;
    if (sub === 'import') return imagesImportCommand.run(rest, ctx);
    throw new UsageError(`unknown images subcommand "${sub ?? ''}" (known here: import)`);
  },
};
