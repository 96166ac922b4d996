/**
 * Repository names, tags and references, checked by the distribution-spec
 * grammar before they are put into a URL path. The grammar is src/oci's
 * (reference.ts); this file adds the client's error type.
 */
import { DigestError, isValidRepositoryPath, isValidTag, MAX_NAME_LENGTH, parseDigest, type Digest } from '../oci/index.js';
import { RegistryClientError } from './errors.js';

/** The spec's limit on a repository name (host part excluded). */
export { MAX_NAME_LENGTH };

export class InvalidNameError extends RegistryClientError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidNameError';
  }
}

export function checkRepositoryName(name: string): string {
  if (!isValidRepositoryPath(name)) {
    throw new InvalidNameError(`invalid repository name "${String(name).slice(0, 300)}"`);
  }
  return name;
}

export function isTag(ref: string): boolean {
  return isValidTag(ref);
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
  if (!isValidTag(ref)) throw new InvalidNameError(`invalid tag "${ref.slice(0, 200)}"`);
  return { kind: 'tag', tag: ref };
}

export function refText(ref: ManifestRef): string {
  return ref.kind === 'tag' ? ref.tag : ref.digest.text;
}
