/**
 * Image references (`[domain/]path[:tag][@digest]`), parsed strictly and normalised
 * the way Docker does it, with the default domain and the official namespace as
 * parameters (ukc's central registry is configurable).
 *
 * Invariant: an `ImageReference` only exists after `parseReference` accepted it,
 * so `domain`, `path` and `tag` match the distribution grammar and `digest` went
 * through `parseDigest`; callers may put them into URLs and storage keys.
 *
 * Grammar (distribution/reference, OCI distribution spec):
 *   reference  := name [ ":" tag ] [ "@" digest ]
 *   name       := [ domain "/" ] path            (at most 255 characters in total)
 *   domain     := host [ ":" port ]
 *   host       := dcomp ( "." dcomp )* | "[" ipv6 "]"
 *   dcomp      := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   path       := pcomp ( "/" pcomp )*
 *   pcomp      := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag        := [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 * The first `/`-separated component is a domain when it contains `.` or `:`, is
 * `localhost`, or has an uppercase letter; otherwise the default domain applies.
 */
import { DigestError, parseDigest, type Digest } from './digest.js';

export interface ImageReference {
  /** Registry host, with port when given (`docker.io`, `localhost:5000`). */
  readonly domain: string;
  /** Repository path inside the registry (`library/alpine`, `alice/app`). */
  readonly path: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
}

export interface ReferenceRules {
  /** Domain used when the reference names none. Docker: `docker.io`. */
  defaultDomain: string;
  /** Namespace prepended to single-component paths on the default domain. Docker: `library`. */
  officialNamespace: string;
  /** Other spellings of the default domain, rewritten to it. Docker: `index.docker.io`. */
  domainAliases: readonly string[];
  /** Tag added when the reference has neither tag nor digest; `undefined` adds none. */
  defaultTag: string | undefined;
}

export const DOCKER_REFERENCE_RULES: Readonly<ReferenceRules> = Object.freeze({
  defaultDomain: 'docker.io',
  officialNamespace: 'library',
  domainAliases: Object.freeze(['index.docker.io']),
  defaultTag: 'latest',
});

/** Maximum length of `domain/path`, as in distribution/reference. */
export const MAX_NAME_LENGTH = 255;
const MAX_INPUT_LENGTH = 1024;

export class ImageReferenceError extends Error {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(message);
    this.name = 'ImageReferenceError';
  }
}

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const HOST = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])`;
const DOMAIN_RE = new RegExp(`^${HOST}(?::[0-9]+)?$`);
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const TAG_RE = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/**
 * True when `path` matches the distribution spec's repository-name grammar (`path`
 * above, no host part) and is at most `maxLength` characters. The one copy of the
 * grammar: registry/, client/ and auth/ wrap it with their own error types.
 */
export function isValidRepositoryPath(path: unknown, maxLength = MAX_NAME_LENGTH): boolean {
  return typeof path === 'string' && path.length > 0 && path.length <= maxLength && PATH_RE.test(path);
}

/** True when `tag` matches the distribution spec's tag grammar (the one copy of it). */
export function isValidTag(tag: unknown): boolean {
  return typeof tag === 'string' && TAG_RE.test(tag);
}

export function isValidDomain(domain: string): boolean {
  if (!DOMAIN_RE.test(domain)) return false;
  const port = /:([0-9]+)$/.exec(domain.startsWith('[') ? domain.slice(domain.indexOf(']')) : domain);
  return port === null || Number(port[1]) <= 65535;
}

function looksLikeDomain(component: string): boolean {
  return /[.:]/.test(component) || component === 'localhost' || component.toLowerCase() !== component;
}

/**
 * Parses an image reference and normalises it with `rules` (Docker's by default):
 * `app` → `docker.io/library/app:latest`. Throws `ImageReferenceError` with the reason.
 */
export function parseReference(input: string, rules: Partial<ReferenceRules> = {}): ImageReference {
  const r: ReferenceRules = { ...DOCKER_REFERENCE_RULES, ...rules };
  if (typeof input !== 'string') throw new ImageReferenceError(String(input), 'image reference must be a string');
  if (input.length === 0) throw new ImageReferenceError(input, 'image reference is empty');
  if (input.length > MAX_INPUT_LENGTH) {
    throw new ImageReferenceError(input.slice(0, 64), `image reference is longer than ${MAX_INPUT_LENGTH} characters`);
  }
  if (/\s/.test(input)) throw new ImageReferenceError(input, `invalid image reference "${input}": contains whitespace`);

  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const digestText = rest.slice(at + 1);
    rest = rest.slice(0, at);
    try {
      digest = parseDigest(digestText);
    } catch (err) {
      const why = err instanceof DigestError ? err.message : 'invalid digest';
      throw new ImageReferenceError(input, `invalid image reference "${input}": ${why}`);
    }
  }

  // A tag is whatever follows the last ':' that comes after the last '/' (a ':' before it is a port).
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw new ImageReferenceError(
        input,
        `invalid tag "${tag}" in "${input}": want [A-Za-z0-9_][A-Za-z0-9_.-], at most 128 characters`,
      );
    }
  }
  if (rest.length === 0) throw new ImageReferenceError(input, `invalid image reference "${input}": missing repository name`);

  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  if (slash >= 0 && looksLikeDomain(rest.slice(0, slash))) {
    domain = rest.slice(0, slash);
    path = rest.slice(slash + 1);
    if (!isValidDomain(domain)) throw new ImageReferenceError(input, `invalid registry domain "${domain}" in "${input}"`);
  } else {
    domain = r.defaultDomain;
    path = rest;
  }
  if (r.domainAliases.includes(domain)) domain = r.defaultDomain;
  if (!PATH_RE.test(path)) {
    const hint = path.toLowerCase() !== path ? ' (repository names must be lowercase)' : '';
    throw new ImageReferenceError(input, `invalid repository name "${path}" in "${input}"${hint}`);
  }
  if (domain === r.defaultDomain && !path.includes('/') && r.officialNamespace !== '') {
    path = `${r.officialNamespace}/${path}`;
  }
  if (domain.length + 1 + path.length > MAX_NAME_LENGTH) {
    throw new ImageReferenceError(input, `repository name in "${input}" is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined && r.defaultTag !== undefined) tag = r.defaultTag;
  return Object.freeze({ domain, path, tag, digest });
}

/** Like `parseReference` but answers `undefined` instead of throwing. */
export function tryParseReference(input: string, rules: Partial<ReferenceRules> = {}): ImageReference | undefined {
  try {
    return parseReference(input, rules);
  } catch {
    return undefined;
  }
}

/** `domain/path`, the repository's full name. */
export function referenceName(ref: ImageReference): string {
  return `${ref.domain}/${ref.path}`;
}

/** The canonical text form `domain/path[:tag][@digest]`; `parseReference` of it gives `ref` back. */
export function formatReference(ref: ImageReference): string {
  let text = referenceName(ref);
  if (ref.tag !== undefined) text += `:${ref.tag}`;
  if (ref.digest !== undefined) text += `@${ref.digest.text}`;
  return text;
}

/**
 * The short form a user would type: the default domain and official namespace left
 * out (`docker.io/library/app:latest` → `app:latest`).
 */
export function familiarReference(ref: ImageReference, rules: Partial<ReferenceRules> = {}): string {
  const r: ReferenceRules = { ...DOCKER_REFERENCE_RULES, ...rules };
  let name = referenceName(ref);
  if (ref.domain === r.defaultDomain) {
    name = ref.path;
    const official = `${r.officialNamespace}/`;
    if (r.officialNamespace !== '' && name.startsWith(official) && !name.slice(official.length).includes('/')) {
      name = name.slice(official.length);
    }
  }
  let text = name;
  if (ref.tag !== undefined) text += `:${ref.tag}`;
  if (ref.digest !== undefined) text += `@${ref.digest.text}`;
  return text;
}

/** Namespace under which the platform publishes its official images (runtimes). */
export const UNIKRAFT_OFFICIAL_NAMESPACE = 'official';

/** The rules of a ukc platform whose central registry is `centralRegistry` (`host[:port]`). */
export function unikraftReferenceRules(centralRegistry: string): ReferenceRules {
  if (!isValidDomain(centralRegistry)) {
    throw new ImageReferenceError(centralRegistry, `invalid central registry host "${centralRegistry}"`);
  }
  return { defaultDomain: centralRegistry, officialNamespace: UNIKRAFT_OFFICIAL_NAMESPACE, domainAliases: [], defaultTag: 'latest' };
}

/**
 * Parses a reference as ukc's CLI and Kraftfile read it: `base-compat:latest` →
 * `<central>/official/base-compat:latest`, `alice/app` → `<central>/alice/app:latest`,
 * and a reference with its own domain stays as written.
 */
export function parseUnikraftReference(input: string, centralRegistry: string): ImageReference {
  return parseReference(input, unikraftReferenceRules(centralRegistry));
}
