/**
 * The authorisation hook. The router decides, from the route alone, which
 * repository and actions a request needs, and asks the `Authorizer` before any
 * handler runs. An authorizer answers with the principal or throws
 * `RegistryError('UNAUTHORIZED' | 'DENIED')`. Accounts and tokens live in
 * src/auth; the default here allows anonymous everything (a local registry).
 */
import type { IncomingMessage } from 'node:http';

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

export const ANONYMOUS: Principal = Object.freeze({ name: 'anonymous', anonymous: true });

/** Allows everything to everyone: the default for a local, loopback registry. */
export const allowAnonymous: Authorizer = () => ANONYMOUS;
