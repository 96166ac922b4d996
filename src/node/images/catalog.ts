/**
 * The node's local image list (§7) behind an interface the integration backs
 * with the local registry. This module owns filtering, visibility and the
 * field shaping of `GET /v1/images/list`, `/digest/{digest}` and `/tag/{tag}`:
 *
 *   url (repository@digest), created_at, owner (root callers only), tags
 *   (short), initrd_or_rom, size_in_bytes, args / env (omitted when none),
 *   users (root callers only).
 *
 * Images of other accounts are invisible (an unknown digest or tag and another
 * tenant's are the same ENOENT).
 */
import { Errno, NodeError } from '../errors.js';
import type { AccountPrincipal, Policy } from '../../auth/index.js';
import { tryParseDigest } from '../../oci/index.js';

export interface CatalogImage {
  /** Full repository address without tag or digest, e.g. `index.node1.example/alice/httpserver`. */
  repository: string;
  /** Manifest digest (canonical text). */
  digest: string;
  createdAt: Date;
  owner: string;
  /** Short tags, e.g. `alice/httpserver:latest`. */
  tags: string[];
  initrdOrRom: boolean;
  sizeInBytes: number;
  args?: string[];
  env?: Record<string, string>;
  /** Accounts that pulled or use the image. */
  users?: string[];
}

export interface ImageCatalog {
  list(): Promise<CatalogImage[]>;
}

export interface ImageFilter {
  tag?: string;
  digest?: string;
}

/** `name` → `name:latest`; a tag already carrying `:tag` is kept. */
export function normaliseTag(tag: string): string {
  const slash = tag.lastIndexOf('/');
  return tag.indexOf(':', slash + 1) === -1 ? `${tag}:latest` : tag;
}

function matches(img: CatalogImage, f: ImageFilter): boolean {
  if (f.digest !== undefined) return img.digest === f.digest;
  if (f.tag !== undefined) {
    const wanted = normaliseTag(f.tag);
    return img.tags.some((t) => normaliseTag(t) === wanted);
  }
  return true;
}

export function presentImage(img: CatalogImage, principal: AccountPrincipal): Record<string, unknown> {
  const out: Record<string, unknown> = {
    url: `${img.repository}@${img.digest}`,
    created_at: img.createdAt.toISOString(),
  };
  if (principal.role === 'root') out.owner = img.owner;
  out.tags = img.tags;
  out.initrd_or_rom = img.initrdOrRom;
  out.size_in_bytes = img.sizeInBytes;
  if (img.args && img.args.length > 0) out.args = img.args;
  if (img.env && Object.keys(img.env).length > 0) out.env = img.env;
  if (principal.role === 'root' && img.users) out.users = img.users;
  return out;
}

export class ImageQueries {
  constructor(
    private readonly catalog: ImageCatalog,
    private readonly policy: Policy,
  ) {}

  private async visible(principal: AccountPrincipal): Promise<CatalogImage[]> {
    const all = await this.catalog.list();
    return all.filter((img) => this.policy.visible(principal, { kind: 'image', owner: img.owner }));
  }

  /** Every visible image matching any filter (all visible ones without filters). */
  async list(principal: AccountPrincipal, filters: ImageFilter[]): Promise<CatalogImage[]> {
    const seen = await this.visible(principal);
    if (filters.length === 0) return seen;
    return seen.filter((img) => filters.some((f) => matches(img, f)));
  }

  async byDigest(principal: AccountPrincipal, digest: string): Promise<CatalogImage[]> {
    if (tryParseDigest(digest) === undefined) throw new NodeError(Errno.EINVAL, 'invalid digest');
    const found = (await this.visible(principal)).filter((img) => img.digest === digest);
    if (found.length === 0) throw new NodeError(Errno.ENOENT, 'image not found');
    return found;
  }

  async byTag(principal: AccountPrincipal, tag: string): Promise<CatalogImage[]> {
    if (!/^[A-Za-z0-9._\-/:]{1,512}$/.test(tag)) throw new NodeError(Errno.EINVAL, 'invalid tag');
    const found = (await this.visible(principal)).filter((img) => matches(img, { tag }));
    if (found.length === 0) throw new NodeError(Errno.ENOENT, 'image not found');
    return found;
  }
}
