/**
 * Account and repository names, parsed by strict grammars before any use.
 *
 * Account name := a lowercase letter, then lowercase letters, digits or single
 * hyphens, ending in a letter or digit; 2..40 characters. Reserved names (the
 * official namespace and friends) can never be accounts, so nobody but root
 * can own `official/*`.
 *
 * Repository name := component ("/" component)*, at most 255 characters, where
 * component := [a-z0-9]+ ((("." | "_" | "__" | "-"+) [a-z0-9]+)*) — the
 * distribution grammar without a host part (our registries serve bare names).
 * The namespace of a repository is its first component. The repository grammar
 * is src/oci's (reference.ts); this file adds auth's error type.
 */
import { isValidRepositoryPath, MAX_NAME_LENGTH } from '../oci/index.js';
import { AuthInputError } from './errors.js';

export const ACCOUNT_NAME_MAX = 40;
export const REPOSITORY_NAME_MAX = MAX_NAME_LENGTH;
/** The account created at first start; it may do everything. */
export const ROOT_ACCOUNT_NAME = 'root';
/** The namespace everyone may read and only root may write. */
export const OFFICIAL_NAMESPACE = 'official';
/** Names that may never become accounts (they are namespaces or routes of the platform). */
export const RESERVED_ACCOUNT_NAMES: ReadonlySet<string> = new Set([
  OFFICIAL_NAMESPACE,
  'library',
  'anonymous',
  'registry',
  'token',
  'v1',
  'v2',
]);

const ACCOUNT_NAME = /^[a-z](?:[a-z0-9]|-(?=[a-z0-9]))*$/;

export function isAccountName(text: unknown): text is string {
  return (
    typeof text === 'string' &&
    text.length >= 2 &&
    text.length <= ACCOUNT_NAME_MAX &&
    ACCOUNT_NAME.test(text) &&
    !RESERVED_ACCOUNT_NAMES.has(text)
  );
}

/** Returns `text` if it is a valid, non-reserved account name; throws `AuthInputError` otherwise. */
export function parseAccountName(text: unknown): string {
  if (!isAccountName(text)) {
    const shown = typeof text === 'string' ? JSON.stringify(text.slice(0, 64)) : typeof text;
    throw new AuthInputError(
      'account-name',
      `invalid account name ${shown}: want 2-${ACCOUNT_NAME_MAX} of [a-z0-9-], starting with a letter, not reserved`,
    );
  }
  return text;
}

export function isRepositoryName(text: unknown): text is string {
  return isValidRepositoryPath(text, REPOSITORY_NAME_MAX);
}

export function parseRepositoryName(text: unknown): string {
  if (!isRepositoryName(text)) {
    const shown = typeof text === 'string' ? JSON.stringify(text.slice(0, 64)) : typeof text;
    throw new AuthInputError('repository-name', `invalid repository name ${shown}`);
  }
  return text;
}

/** The first component of a repository name: `alice` for `alice/app/web`, `app` for `app`. */
export function namespaceOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(0, slash);
}
