/**
 * Who may do what on which object. Deny by default: every `authorize` answer
 * starts as "no" and only the rules below turn it into "yes".
 *
 * Registry (repository objects; actions pull, push, delete):
 *   - root (with a full or registry token) may do everything;
 *   - `<owner>/*` may be pushed and deleted only by <owner>, and pulled by
 *     <owner> and by the accounts listed in the repository's `readers`
 *     (the image's `users`);
 *   - `official/*` may be pulled by every account, and by anonymous requests
 *     when `anonymousPullOfficial` is set; only root writes it;
 *   - `library/*` (Docker Hub's official images, which a central registry
 *     serves as a mirror for builds' `FROM python:3.12`) may be pulled by
 *     every account — they are public upstream — and written only by root;
 *   - any other namespace (no account of that name, single-component names)
 *     belongs to root alone;
 *   - a `registry-pull` token may only pull; a registry token grant (a JWT we
 *     issued) may do exactly what its `access` claim lists, nothing more.
 *
 * Platform (instances, services, volumes, certificates, cached images; actions read, write):
 *   - only full tokens reach the platform API; root sees everything, an account
 *     sees only what it owns. Callers must answer "not found" (ENOENT / 404)
 *     when `visible` is false, so another tenant's object looks exactly like a
 *     missing one (security row 14).
 */
import type { AccountQuotas, AccountRole, TokenScope } from './accounts.js';
import type { AccessEntry } from './jwt.js';
import { isRepositoryName, namespaceOf, OFFICIAL_NAMESPACE } from './names.js';

/** Where a central registry keeps its mirror of Docker Hub's official images (`docker.io/library/*`). */
export const DOCKER_HUB_MIRROR_NAMESPACE = 'library';
import type { RepositoryAction } from './scope.js';

export interface AnonymousPrincipal {
  readonly kind: 'anonymous';
}

/** Authenticated by an API token (Bearer, or Basic with the token as password). */
export interface AccountPrincipal {
  readonly kind: 'account';
  readonly name: string;
  readonly role: AccountRole;
  readonly tokenScope: TokenScope;
  /**
   * The account's quotas as the authenticator found them (the node enforces them on create
   * and start). Absent where no quotas apply (a single-tenant node).
   */
  readonly quotas?: AccountQuotas;
}

/** A principal with a full-scope token (what the platform API admits), frozen. */
export function accountPrincipal(name: string, role: AccountRole = 'user', quotas?: AccountQuotas): AccountPrincipal {
  return Object.freeze({ kind: 'account', name, role, tokenScope: 'full', ...(quotas !== undefined ? { quotas } : {}) });
}

/** Authenticated by a registry token we signed: may do exactly what `access` lists. */
export interface GrantPrincipal {
  readonly kind: 'grant';
  /** The token's `sub`. */
  readonly name: string;
  readonly access: readonly AccessEntry[];
}

export type Principal = AnonymousPrincipal | AccountPrincipal | GrantPrincipal;

export const ANONYMOUS: AnonymousPrincipal = Object.freeze({ kind: 'anonymous' });

export interface RepositoryObject {
  readonly kind: 'repository';
  readonly name: string;
  /** Accounts besides the owner that may pull (the image's `users`). */
  readonly readers?: readonly string[];
}

/** Platform objects owned by an account. `image` is an image in a node's cache, owned by who pulled or pushed it. */
export type OwnedObjectKind = 'instance' | 'service' | 'volume' | 'certificate' | 'image';

export interface OwnedObject {
  readonly kind: OwnedObjectKind;
  /** The account that created it. */
  readonly owner: string;
}

export type PolicyObject = RepositoryObject | OwnedObject;
export type PlatformAction = 'read' | 'write';
export type PolicyAction = RepositoryAction | PlatformAction;

export interface Decision {
  readonly allow: boolean;
  /** Why, for logs; never shown to another tenant (it could reveal existence). */
  readonly reason: string;
}

export interface PolicyOptions {
  /** Let requests without credentials pull `official/*` (default false). */
  anonymousPullOfficial?: boolean;
  /** The namespace readable by everyone (default `official`). */
  officialNamespace?: string;
}

const allow = (reason: string): Decision => Object.freeze({ allow: true, reason });
const deny = (reason: string): Decision => Object.freeze({ allow: false, reason });

function isRepositoryAction(a: PolicyAction): a is RepositoryAction {
  return a === 'pull' || a === 'push' || a === 'delete';
}

export class Policy {
  readonly anonymousPullOfficial: boolean;
  readonly officialNamespace: string;

  constructor(opts: PolicyOptions = {}) {
    this.anonymousPullOfficial = opts.anonymousPullOfficial ?? false;
    this.officialNamespace = opts.officialNamespace ?? OFFICIAL_NAMESPACE;
  }

  authorize(principal: Principal, action: PolicyAction, object: PolicyObject): Decision {
    if (object.kind === 'repository') {
      if (!isRepositoryAction(action)) return deny(`action ${action} does not apply to repositories`);
      return this.#repository(principal, action, object);
    }
    if (action !== 'read' && action !== 'write') return deny(`action ${action} does not apply to ${object.kind}`);
    return this.#owned(principal, object);
  }

  /** May `principal` know that `object` exists? When false, answer exactly as for a missing object. */
  visible(principal: Principal, object: PolicyObject): boolean {
    return this.authorize(principal, object.kind === 'repository' ? 'pull' : 'read', object).allow;
  }

  /** The subset of `wanted` that `principal` may do on `object`, in the order given. */
  allowedActions(principal: Principal, object: RepositoryObject, wanted: readonly RepositoryAction[]): RepositoryAction[] {
    return wanted.filter((a) => this.authorize(principal, a, object).allow);
  }

  /**
   * Cross-repository blob mount (`POST /v2/<target>/blobs/uploads/?mount=&from=<source>`):
   * `mount` only when the principal may push to the target and pull from the
   * source; otherwise `upload` — the registry must then answer a plain 202
   * upload session, revealing nothing about the source (security row 9).
   */
  mountDecision(principal: Principal, target: RepositoryObject, source: RepositoryObject): 'mount' | 'upload' {
    const ok = this.authorize(principal, 'push', target).allow && this.authorize(principal, 'pull', source).allow;
    return ok ? 'mount' : 'upload';
  }

  /** The registry catalog (`/v2/_catalog`) lists every name: root only. */
  mayListCatalog(principal: Principal): boolean {
    if (principal.kind === 'account') return principal.role === 'root' && principal.tokenScope !== 'registry-pull';
    if (principal.kind === 'grant') {
      return principal.access.some((e) => e.type === 'registry' && e.name === 'catalog' && e.actions.includes('*'));
    }
    return false;
  }

  #repository(principal: Principal, action: RepositoryAction, repo: RepositoryObject): Decision {
    if (!isRepositoryName(repo.name)) return deny('invalid repository name');
    const official = namespaceOf(repo.name) === this.officialNamespace;
    switch (principal.kind) {
      case 'anonymous':
        if (action === 'pull' && official && this.anonymousPullOfficial) return allow('anonymous pull of official');
        return deny('authentication required');
      case 'grant': {
        const granted = principal.access.some(
          (e) => e.type === 'repository' && e.name === repo.name && (e.actions.includes(action) || e.actions.includes('*')),
        );
        return granted ? allow('granted by registry token') : deny('registry token does not grant this');
      }
      case 'account': {
        if (principal.tokenScope === 'registry-pull' && action !== 'pull') return deny('token is pull-only');
        if (principal.role === 'root') return allow('root');
        if (namespaceOf(repo.name) === principal.name) return allow('owner');
        if (action !== 'pull') return deny('only the owner may write');
        if (official) return allow('official images are public');
        if (namespaceOf(repo.name) === DOCKER_HUB_MIRROR_NAMESPACE) return allow('mirrored Docker Hub official images are public');
        if (repo.readers?.includes(principal.name) === true) return allow('listed reader');
        return deny('not a reader');
      }
    }
  }

  #owned(principal: Principal, object: OwnedObject): Decision {
    if (principal.kind !== 'account') return deny('authentication required');
    if (principal.tokenScope !== 'full') return deny('token is limited to the registry');
    if (principal.role === 'root') return allow('root');
    if (object.owner === principal.name) return allow('owner');
    return deny('not the owner');
  }
}
