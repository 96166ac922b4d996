/**
 * The authorisation hooks. The router decides, from the route alone, which
 * repository and actions a request needs, and asks the `Authorizer` before any
 * handler runs (deny by default is the authorizer's business: it answers with
 * the principal or throws). Accounts and tokens live in src/auth, plugged in by
 * `createRegistryAuth` (token-auth.ts); the default here allows anonymous
 * everything (a local, loopback registry).
 *
 * What an authorizer is asked:
 *   GET /v2/                → { actions: [] }                  (authentication only)
 *   GET /v2/_catalog        → { actions: ['pull'], catalog: true }
 *   /v2/<name>/...          → { repository: name, actions }    (from the route table)
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type RegistryAction = 'pull' | 'push' | 'delete';

export interface AccessRequest {
  /** The repository the route touches; absent for the base route and the catalog. */
  repository?: string;
  /** Actions needed; empty for the base route (authentication only). */
  actions: RegistryAction[];
  /** True for `/v2/_catalog` (registry-wide listing). */
  catalog?: boolean;
}

export interface Principal {
  /** Account name, or "anonymous". Upload session limits count per principal name. */
  name: string;
  anonymous: boolean;
}

export type Authorizer = (req: IncomingMessage, access: AccessRequest) => Principal | Promise<Principal>;

/**
 * Everything the registry asks about access. Only `authorize` is required;
 * the others have defaults that follow from it.
 */
export interface RegistryAccessControl {
  authorize: Authorizer;
  /**
   * `POST /v2/<target>/blobs/uploads/?mount=&from=<source>` (push on target already granted):
   * true to mount, false for a plain 202 upload that reveals nothing about `source`.
   * Must not throw for a refusal. Default: `authorize` grants pull on `source`.
   */
  mayMount?: (req: IncomingMessage, principal: Principal, target: string, source: string) => Promise<boolean>;
  /** Serves `GET|POST /v2/token` (the token flow's realm) and ends the response; absent → 404. */
  tokenEndpoint?: (req: IncomingMessage, res: ServerResponse) => Promise<void>;
}

export const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous', anonymous: true });

/** Allows everything to everyone: the default for a local, loopback registry. */
export const allowAnonymous: Authorizer = () => ANONYMOUS;

/** The mount rule derived from an authorizer alone: mount only with pull on the source. */
export function mountByAuthorizer(authorize: Authorizer): NonNullable<RegistryAccessControl['mayMount']> {
  return async (req, _principal, _target, source) => {
    try {
      await authorize(req, { repository: source, actions: ['pull'] });
      return true;
    } catch {
      return false;
    }
  };
}
