/**
 * `unikraft images list [--all] [--central|--local] | get REF | delete REF`
 * (and `images import`, owned by the build front end). Lists show your own
 * images by default (`--all` adds official ones and, for root, everyone's),
 * from the central registry and the selected metro's node-local registry.
 * `delete` without a tag removes every tag, in both places.
 */
import { UsageError, UserError } from '../../../util/index.js';
import { RegistryClient } from '../../../client/index.js';
import type { LocalImage } from '../../../client/index.js';
import { isDigestString, isValidRepositoryPath, isValidTag } from '../../../oci/index.js';
import { centralImageRows, imagesView, localImageRows, type ImageRow } from '../../views.js';
import { controlPlane, nodeApi, parseCommand, print, progress, requireAccount, subcommand, type CliRuntime } from '../../runtime.js';
import type { CliCommand } from '../../command.js';
import { IMAGES_HELP, imagesSpec, WHERE } from './help.js';

/** An image argument: repository, and a tag, a digest or both (`name:tag@sha256:...` pins the digest). */
export interface ImageArg {
  repository: string;
  tag?: string;
  digest?: string;
}

/** `[host/]owner/image[:tag][@digest]` or `image[:tag][@digest]` (your namespace) → repository, tag, digest. */
export function parseImageArg(text: string, account: string): ImageArg {
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigestString(digest)) throw new UsageError(`invalid digest in "${text}" (expected sha256: and 64 lowercase hex digits)`);
  }
  let tag: string | undefined;
  const colon = rest.indexOf(':', rest.lastIndexOf('/') + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  const parts = rest.split('/');
  if (parts.length > 1 && /[.:]|^localhost$/.test(parts[0]!)) parts.shift();
  if (parts.length === 1) parts.unshift(account);
  const repository = parts.join('/');
  if (!repository.includes('/') || !isValidRepositoryPath(repository, Infinity)) throw new UsageError(`invalid image name "${text}"`);
  if (tag !== undefined && !isValidTag(tag)) throw new UsageError(`invalid tag in "${text}"`);
  return { repository, ...(tag !== undefined ? { tag } : {}), ...(digest !== undefined ? { digest } : {}) };
}

function ownLocal(images: LocalImage[], account: string): LocalImage[] {
  return images.filter((img) => (img.tags ?? []).some((t) => t.startsWith(`${account}/`)) || img.url.includes(`/${account}/`));
}

async function gather(cli: CliRuntime, opts: { all: boolean; central: boolean; local: boolean }): Promise<ImageRow[]> {
  const account = requireAccount(cli);
  const rows: ImageRow[] = [];
  if (opts.central) {
    const central = await controlPlane(cli).listCentralImages(opts.all ? {} : { namespace: account });
    rows.push(...centralImageRows(central));
  }
  if (opts.local) {
    const { api, metro } = nodeApi(cli);
    const local = await api.listLocalImages();
    rows.push(...localImageRows(opts.all ? local : ownLocal(local, account), metro));
  }
  return rows;
}

function matches(row: ImageRow, { repository, tag, digest }: ImageArg): boolean {
  if (digest !== undefined && row.digest !== digest) return false;
  const ref = row.ref;
  const colon = ref.lastIndexOf(':');
  const name = colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
  const rowTag = colon > ref.lastIndexOf('/') ? ref.slice(colon + 1) : undefined;
  return (name === repository || name.endsWith(`/${repository}`)) && (tag === undefined || rowTag === tag);
}

/** Removes the image's tags from the node's local registry (OCI DELETE of each manifest). */
async function deleteLocal(cli: CliRuntime, repository: string, tag: string | undefined): Promise<string[]> {
  const s = cli.settings();
  if (s.metroRegistry === undefined) return [];
  const { api } = nodeApi(cli);
  const local = await api.listLocalImages();
  const digests = new Set<string>();
  for (const img of local) {
    const at = img.url.lastIndexOf('@');
    const repo = img.url.slice(0, at).split('/').slice(1).join('/');
    if (repo !== repository) continue;
    if (tag === undefined || (img.tags ?? []).some((t) => t === `${repository}:${tag}` || t.endsWith(`:${tag}`))) digests.add(img.url.slice(at + 1));
  }
  if (digests.size === 0) return [];
  const client = new RegistryClient({ host: s.metroRegistry, ...(s.token ? { credentials: { token: s.token } } : {}) });
  try {
    for (const d of digests) await client.deleteManifest(repository, d, cli.signal);
  } finally {
    client.close();
  }
  return [...digests];
}

export const imagesCommand: CliCommand = {
  ...imagesSpec,
  async run(args, cli) {
    const { name: sub, help, rest } = subcommand('unikraft images', IMAGES_HELP, args, { ls: 'list', rm: 'delete', remove: 'delete' });
    // The builder behind `import` loads only for it (see ../../command.ts).
    if (sub === 'import') return (await import('../build-glue.js')).imagesImportCommand.run(rest, cli);
    const parsed = parseCommand(cli, `unikraft images ${sub}`, { ...help, options: { all: IMAGES_HELP.subcommands.list.options.all, ...WHERE } }, rest);
    if (sub !== 'list' && parsed.values.all !== undefined) throw new UsageError(`images ${sub} has no --all`);
    const v = parsed.values;
    const only = v.central === true ? 'central' : v.local === true ? 'local' : undefined;
    const where = { central: only !== 'local', local: only !== 'central' };
    switch (sub) {
      case 'list':
        print(cli, imagesView(await gather(cli, { all: v.all === true, ...where })), 'table');
        return 0;
      case 'get': {
        const [name] = parsed.positionals;
        if (name === undefined) throw new UsageError('images get needs an image name');
        const arg = parseImageArg(name, requireAccount(cli));
        const rows = (await gather(cli, { all: true, ...where })).filter((r) => matches(r, arg));
        if (rows.length === 0) throw new UserError(`image ${name} not found`);
        print(cli, imagesView(rows), 'kv');
        return 0;
      }
      case 'delete': {
        if (parsed.positionals.length === 0) throw new UsageError('images delete needs an image name');
        for (const name of parsed.positionals) {
          const { repository, tag, digest } = parseImageArg(name, requireAccount(cli));
          if (digest !== undefined) throw new UsageError(`images delete removes tags: name "${name}" by tag (without @${digest.slice(0, 13)}...)`);
          const full = tag === undefined ? repository : `${repository}:${tag}`;
          let removed = 0;
          if (where.central) {
            try {
              const [gone] = await controlPlane(cli).deleteCentralImages([full]);
              removed += gone?.tags?.length ?? 0;
              progress(cli, `deleted ${full} from the central registry`);
            } catch (err) {
              if (!(err instanceof Error && 'errno' in err && (err as { errno?: number }).errno === 2)) throw err;
            }
          }
          if (where.local) {
            const gone = await deleteLocal(cli, repository, tag);
            if (gone.length > 0) progress(cli, `deleted ${full} from the node's local registry`);
            removed += gone.length;
          }
          if (removed === 0) throw new UserError(`image ${name} not found`);
          if (cli.globals.format === 'quiet') cli.stdout.write(`${full}\n`);
        }
        return 0;
      }
    }
  },
};
