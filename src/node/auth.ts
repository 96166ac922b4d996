/**
 * Who is asking, and may they. The node API authenticates a request into a
 * `Principal` and asks an `AccessPolicy` about every (action, object) pair.
 *
 * Tenant isolation rule (security case 14): an object the principal may not
 * `read` is answered exactly like a missing one (ENOENT / 404), so nobody can
 * learn whether another tenant's object exists. Lookups therefore go through
 * `findVisible(principal, idOrName)` in the services, never a bare lookup.
 */
import type { IncomingHttpHeaders } from 'node:http';

export interface Principal {
  /** Account name; owner of everything this principal creates. */
  account: string;
  /** The platform operator: sees every account's objects and owner fields. */
  root: boolean;
  /** The account's quotas (instances, live memory, services); absent on a single-tenant node: no quotas. */
  quotas?: NodeQuotas;
}

/** Mirrors src/auth's AccountQuotas; kept here so the node API does not depend on the accounts store. */
export interface NodeQuotas {
  readonly maxInstances: number;
  readonly maxLiveMemoryMb: number;
  readonly maxServices: number;
}

export type ObjectKind = 'instance' | 'image' | 'node' | 'service' | 'certificate' | 'user';

/** Verbs checked by the policy. `read` gates visibility; the rest gate changes. */
export type Action = 'read' | 'create' | 'update' | 'delete' | 'start' | 'stop' | 'log' | 'metrics' | 'wait';

/** The object an action applies to: a whole collection (no owner) or one object. */
export interface ObjectRef {
  kind: ObjectKind;
  /** Absent for collection-level checks (e.g. "may create instances at all"). */
  owner?: string;
  uuid?: string;
}

export interface AccessPolicy {
  authorize(principal: Principal, action: Action, object: ObjectRef): boolean;
}

/**
 * Resolves request headers to a principal, or undefined when not authenticated (401).
 * May be asynchronous (a node checking tokens with its control plane) and may throw a
 * `NodeError` of its own (e.g. 503 when the control plane cannot be asked).
 */
export type Authenticator = (headers: IncomingHttpHeaders) => Principal | undefined | Promise<Principal | undefined>;

/** The account every request belongs to on a single-tenant node. */
export const LOCAL_PRINCIPAL: Principal = Object.freeze({ account: 'local', root: true });

/** Default: one tenant, no token needed, everything allowed. */
export const singleTenantAuthenticator: Authenticator = () => LOCAL_PRINCIPAL;
export const allowAllPolicy: AccessPolicy = { authorize: () => true };

/**
 * Multi-tenant baseline: root may do everything; others only act on their own
 * objects and on collections. The accounts helper plugs in a richer policy.
 */
export const ownerOnlyPolicy: AccessPolicy = {
  authorize(principal, _action, object) {
    if (principal.root) return true;
    return object.owner === undefined || object.owner === principal.account;
  },
};
