/**
 * Resource scopes of the registry token protocol, parsed strictly.
 *
 *   scopes        := resourcescope (" " resourcescope)*       (one query value, or a form field)
 *   resourcescope := type ":" name ":" action ("," action)*
 *   type          := [a-z0-9]+ ("(" [a-z0-9]+ ")")?
 *   action        := [a-z]+ | "*"
 *
 * For type `repository` the name must follow the repository grammar and the
 * actions must be `pull`, `push`, `delete` or `*` (all three). Other types
 * (e.g. `registry:catalog:*`) are kept as they are so the token service can
 * decide on them — it grants nothing for types it does not know.
 *
 * Invariant: every value returned has been checked; anything else raises
 * `AuthInputError('scope')` and nothing else, whatever the input.
 */
import { AuthInputError } from './errors.js';
import { parseRepositoryName } from './names.js';

export type RepositoryAction = 'pull' | 'push' | 'delete';
export const REPOSITORY_ACTIONS: readonly RepositoryAction[] = ['pull', 'push', 'delete'];

export interface RepositoryScope {
  readonly type: 'repository';
  readonly name: string;
  /** Distinct, in the order pull, push, delete. */
  readonly actions: readonly RepositoryAction[];
}

export interface OtherScope {
  readonly type: 'other';
  /** The resource type as written, e.g. `registry`. */
  readonly resourceType: string;
  readonly name: string;
  readonly actions: readonly string[];
}

export type ResourceScope = RepositoryScope | OtherScope;

export interface ScopeLimits {
  /** Longest accepted scope text (all values together), in characters. */
  maxScopeTextLength: number;
  /** Most resource scopes in one request. */
  maxScopes: number;
}

export const DEFAULT_SCOPE_LIMITS: Readonly<ScopeLimits> = Object.freeze({ maxScopeTextLength: 4096, maxScopes: 32 });

const TYPE = /^[a-z0-9]+(?:\([a-z0-9]+\))?$/;
const ACTION = /^(?:[a-z]+|\*)$/;
const OTHER_NAME = /^[A-Za-z0-9._/-]{1,255}$/;

function fail(message: string): never {
  throw new AuthInputError('scope', message);
}

function sortActions(set: ReadonlySet<RepositoryAction>): RepositoryAction[] {
  return REPOSITORY_ACTIONS.filter((a) => set.has(a));
}

/** Parses one `type:name:actions` item. */
export function parseResourceScope(text: string): ResourceScope {
  if (typeof text !== 'string' || text.length === 0) fail('empty scope');
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first <= 0 || last === first) fail(`scope ${JSON.stringify(text.slice(0, 80))} is not type:name:actions`);
  const type = text.slice(0, first);
  const name = text.slice(first + 1, last);
  const actionText = text.slice(last + 1);
  if (!TYPE.test(type)) fail(`invalid scope resource type ${JSON.stringify(type.slice(0, 40))}`);
  if (actionText.length === 0) fail('scope has no actions');
  const actions = actionText.split(',');
  for (const a of actions) {
    if (!ACTION.test(a)) fail(`invalid scope action ${JSON.stringify(a.slice(0, 40))}`);
  }
  if (type === 'repository') {
    let repository: string;
    try {
      repository = parseRepositoryName(name);
    } catch {
      fail(`invalid repository name in scope: ${JSON.stringify(name.slice(0, 80))}`);
    }
    const set = new Set<RepositoryAction>();
    for (const a of actions) {
      if (a === '*') REPOSITORY_ACTIONS.forEach((x) => set.add(x));
      else if (a === 'pull' || a === 'push' || a === 'delete') set.add(a);
      else fail(`unknown repository action ${JSON.stringify(a)}`);
    }
    return Object.freeze({ type: 'repository', name: repository, actions: Object.freeze(sortActions(set)) });
  }
  if (!OTHER_NAME.test(name)) fail(`invalid scope resource name ${JSON.stringify(name.slice(0, 80))}`);
  return Object.freeze({
    type: 'other',
    resourceType: type,
    name,
    actions: Object.freeze([...new Set(actions)]),
  });
}

/**
 * Parses every scope of a request: each value may hold several space-separated
 * items (the OAuth2 form) and the query may repeat `scope`. Repository scopes
 * naming the same repository are merged.
 */
export function parseScopes(values: readonly string[], limits: ScopeLimits = DEFAULT_SCOPE_LIMITS): ResourceScope[] {
  let total = 0;
  const items: string[] = [];
  for (const v of values) {
    if (typeof v !== 'string') fail('scope is not a string');
    total += v.length;
    if (total > limits.maxScopeTextLength) fail(`scope text longer than ${limits.maxScopeTextLength} characters`);
    for (const part of v.split(' ')) {
      if (part.length === 0) continue;
      items.push(part);
      if (items.length > limits.maxScopes) fail(`more than ${limits.maxScopes} scopes`);
    }
  }
  const repos = new Map<string, Set<RepositoryAction>>();
  const others: OtherScope[] = [];
  for (const item of items) {
    const s = parseResourceScope(item);
    if (s.type === 'repository') {
      const set = repos.get(s.name) ?? new Set<RepositoryAction>();
      s.actions.forEach((a) => set.add(a));
      repos.set(s.name, set);
    } else {
      others.push(s);
    }
  }
  const out: ResourceScope[] = [];
  for (const [name, set] of repos) {
    out.push(Object.freeze({ type: 'repository', name, actions: Object.freeze(sortActions(set)) }));
  }
  return [...out, ...others];
}

/** The text form, as it goes into a challenge or a token request. */
export function formatScope(scope: ResourceScope): string {
  const type = scope.type === 'repository' ? 'repository' : scope.resourceType;
  return `${type}:${scope.name}:${scope.actions.join(',')}`;
}
