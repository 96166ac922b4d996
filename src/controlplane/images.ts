/**
 * The central image list (`GET /v1/images`) and image removal, read straight
 * from the registry's metadata store, so a removed image leaves the list at
 * once (upstream may lag minutes; we do not).
 *
 * Names are `{owner}/{registry}/{image}`: the repository's first path
 * component is the owner (account, or `official`), `registry` is this
 * registry's public host, `image` is the rest of the path. A repository whose
 * every tag is gone is not listed.
 */
import type { MetadataStore } from '../store/index.js';
import { namespaceOf } from '../auth/index.js';
import { isValidRepositoryPath, isValidTag } from '../oci/index.js';

export interface CentralImageEntry {
  name: string;
  /** Repository path inside the registry, e.g. `alice/httpserver`. */
  repository: string;
  owner: string;
  tags: CentralImageTag[];
}

export interface CentralImageTag {
  name: string;
  digest: string;
  /** Bytes of the manifest and every blob it references (config, layers). */
  size: number;
  /** When the manifest was pushed (ms since the epoch). */
  pushedAt: number;
}

export interface CentralImagesOptions {
  metadata: MetadataStore;
  /** Host shown as `{registry}` in names. */
  registryName: string;
  /** Repositories read per page while listing. */
  pageSize?: number;
  /** Repositories listed at most (a bound on one answer). */
  maxRepositories?: number;
}

export const DEFAULT_CENTRAL_IMAGE_LIMITS = { pageSize: 500, maxRepositories: 100_000 };

export class ImageNameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ImageNameError';
  }
}

export class CentralImages {
  private readonly pageSize: number;
  private readonly maxRepositories: number;

  constructor(private readonly options: CentralImagesOptions) {
    this.pageSize = options.pageSize ?? DEFAULT_CENTRAL_IMAGE_LIMITS.pageSize;
    this.maxRepositories = options.maxRepositories ?? DEFAULT_CENTRAL_IMAGE_LIMITS.maxRepositories;
  }

  nameOf(repository: string): string {
    const owner = namespaceOf(repository);
    const rest = repository.slice(owner.length + 1) || owner;
    return `${owner}/${this.options.registryName}/${rest}`;
  }

  /** Every repository with at least one tag, optionally only those of one namespace (owner). */
  async list(filter: { namespace?: string } = {}): Promise<CentralImageEntry[]> {
    const out: CentralImageEntry[] = [];
    let last: string | undefined;
    for (let seen = 0; seen < this.maxRepositories; ) {
      const page = await this.options.metadata.listRepositories(last === undefined ? { n: this.pageSize } : { n: this.pageSize, last });
      if (page.length === 0) break;
      seen += page.length;
      last = page[page.length - 1];
      for (const repository of page) {
        const owner = namespaceOf(repository);
        if (filter.namespace !== undefined && owner !== filter.namespace) continue;
        const tagNames = (await this.options.metadata.listTags(repository)) ?? [];
        const tags: CentralImageTag[] = [];
        const manifests = new Map((await this.options.metadata.listManifests(repository)).map((m) => [m.digest, m]));
        const sizes = new Map<string, number>();
        for (const tag of tagNames) {
          const digest = await this.options.metadata.resolveTag(repository, tag);
          const m = digest === undefined ? undefined : manifests.get(digest);
          if (digest === undefined || m === undefined) continue;
          let size = sizes.get(digest);
          if (size === undefined) {
            size = m.size;
            for (const ref of m.references) if (ref.kind === 'blob') size += (await this.options.metadata.blobLink(repository, ref.digest))?.size ?? 0;
            sizes.set(digest, size);
          }
          tags.push({ name: tag, digest, size, pushedAt: m.createdAt });
        }
        if (tags.length > 0) out.push({ name: this.nameOf(repository), repository, owner, tags });
      }
      if (page.length < this.pageSize) break;
    }
    return out;
  }

  /**
   * Parses what a user may call an image: `owner/image[:tag]`, the listed
   * `{owner}/{registry}/{image}[:tag]`, or `{registry}/owner/image[:tag]`.
   */
  parseName(text: string): { repository: string; tag?: string } {
    if (text.length > 512) throw new ImageNameError('image name too long');
    let rest = text;
    let tag: string | undefined;
    const lastSlash = rest.lastIndexOf('/');
    const colon = rest.indexOf(':', lastSlash + 1);
    if (colon !== -1) {
      tag = rest.slice(colon + 1);
      rest = rest.slice(0, colon);
      if (!isValidTag(tag)) throw new ImageNameError(`invalid tag "${tag}"`);
    }
    const reg = this.options.registryName;
    const parts = rest.split('/');
    if (parts.length >= 3 && parts[1] === reg) rest = [parts[0], ...parts.slice(2)].join('/');
    else if (parts.length >= 3 && parts[0] === reg) rest = parts.slice(1).join('/');
    if (!isOwnedRepositoryPath(rest)) {
      throw new ImageNameError(`invalid image name "${text}": want owner/image[:tag]`);
    }
    return tag === undefined ? { repository: rest } : { repository: rest, tag };
  }

  /**
   * Removes one tag (`owner/image:tag`: the tag, and its manifest when no other
   * tag points at it), or with no tag every manifest of the repository (all
   * tags). Answers the tags removed; none means the image did not exist.
   */
  async remove(repository: string, tag?: string): Promise<{ name: string; digest: string }[]> {
    const md = this.options.metadata;
    const removed: { name: string; digest: string }[] = [];
    if (tag !== undefined) {
      // One transaction: a push re-tagging the digest meanwhile cannot lose its tag, a crash leaves all or nothing.
      const gone = await md.untag(repository, tag);
      if (gone) removed.push({ name: tag, digest: gone.digest });
      return removed;
    }
    for (const m of await md.listManifests(repository)) {
      for (const t of await md.tagsOf(repository, m.digest)) removed.push({ name: t, digest: m.digest });
      await md.deleteManifest(repository, m.digest);
    }
    return removed;
  }
}

/** `owner/image...`: the distribution grammar (src/oci's), with at least two components; length is the caller's limit. */
function isOwnedRepositoryPath(path: string): boolean {
  return path.includes('/') && isValidRepositoryPath(path, Infinity);
}
