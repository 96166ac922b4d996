/**
 * Repository names, tags and references, checked by the distribution-spec
 * grammar before they are put into a URL path.
 */
import { DigestError, parseDigest, type Digest } from '../oci/index.js';
import { RegistryClientError } from './errors.js';

const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** The spec's limit on a repository name (host part excluded). */
export const MAX_NAME_LENGTH = 255;

export class InvalidNameError extends RegistryClientError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidNameError';
  }
}

export function checkRepositoryName(name: string): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH || !NAME.test(name)) {
    throw new InvalidNameError(`invalid repository name "${String(name).slice(0, 300)}"`);
  }
  return name;
}

export function isTag(ref: string): boolean {
  return TAG.test(ref);
}

/** A manifest reference: a tag or a digest. */
export type ManifestRef = { kind: 'tag'; tag: string } | { kind: 'digest'; digest: Digest };

export function parseManifestRef(ref: string | Digest): ManifestRef {
  if (typeof ref !== 'string') return { kind: 'digest', digest: ref };
  if (ref.includes(':')) {
    try {
      return { kind: 'digest', digest: parseDigest(ref) };
    } catch (err) {
      throw new InvalidNameError(err instanceof DigestError ? err.message : `invalid reference "${ref}"`);
    }
  }
  if (!TAG.test(ref)) throw new InvalidNameError(`invalid tag "${ref.slice(0, 200)}"`);
  return { kind: 'tag', tag: ref };
}

export function refText(ref: ManifestRef): string {
  return ref.kind === 'tag' ? ref.tag : ref.digest.text;
}
