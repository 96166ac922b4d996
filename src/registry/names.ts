/**
 * Repository names and tags by the distribution grammar, checked before any use.
 *
 *   name      := component ("/" component)*        (at most REPOSITORY_NAME_MAX_LENGTH chars)
 *   component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
 *   tag       := [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 * The grammar is src/oci's (reference.ts); this file adds the registry's error.
 */
import { isValidRepositoryPath, isValidTag, MAX_NAME_LENGTH } from '../oci/index.js';
import { RegistryError } from './errors.js';

export const REPOSITORY_NAME_MAX_LENGTH = MAX_NAME_LENGTH;

export function isRepositoryName(name: string, maxLength = REPOSITORY_NAME_MAX_LENGTH): boolean {
  return isValidRepositoryPath(name, maxLength);
}

/** Returns `name` or throws NAME_INVALID. */
export function parseRepositoryName(name: string, maxLength = REPOSITORY_NAME_MAX_LENGTH): string {
  if (!isRepositoryName(name, maxLength)) {
    throw new RegistryError('NAME_INVALID', { detail: { name: name.slice(0, 300) } });
  }
  return name;
}

export function isTag(tag: string): boolean {
  return isValidTag(tag);
}
