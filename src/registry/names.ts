/**
 * Repository names and tags by the distribution grammar, checked before any use.
 *
 *   name      := component ("/" component)*        (at most REPOSITORY_NAME_MAX_LENGTH chars)
 *   component := [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
 *   tag       := [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}
 */
import { RegistryError } from './errors.js';

export const REPOSITORY_NAME_MAX_LENGTH = 255;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

export function isRepositoryName(name: string, maxLength = REPOSITORY_NAME_MAX_LENGTH): boolean {
  if (name.length === 0 || name.length > maxLength) return false;
  return name.split('/').every((c) => COMPONENT.test(c));
}

/** Returns `name` or throws NAME_INVALID. */
export function parseRepositoryName(name: string, maxLength = REPOSITORY_NAME_MAX_LENGTH): string {
  if (!isRepositoryName(name, maxLength)) {
    throw new RegistryError('NAME_INVALID', { detail: { name: name.slice(0, 300) } });
  }
  return name;
}

export function isTag(tag: string): boolean {
  return TAG.test(tag);
}
