/**
 * The node API's `Authenticator` and `AccessPolicy` backed by src/auth's
 * accounts: `Authorization: Bearer <UKC_TOKEN>` (a full-scope API token) names
 * the account; root sees everything, an account only what it owns.
 *
 * Invariant (security case 14): the policy answers "no" to `read` for another
 * tenant's object, and the services turn that into ENOENT exactly like a
 * missing object, so nobody learns whether it exists.
 */
import { AuthError, createPlatformAuthenticator, Policy, type AccountPrincipal, type AccountStore } from '../auth/index.js';
import type { AccessPolicy, Authenticator, Principal } from './auth.js';

export interface NodeAccountsAuth {
  authenticate: Authenticator;
  policy: AccessPolicy;
}

/** Pass both to `createNodeApi({ ..., authenticate, policy })`. */
export function nodeAuthFromAccounts(accounts: AccountStore, options: { policy?: Policy } = {}): NodeAccountsAuth {
  const platform = createPlatformAuthenticator({ accounts });
  const policy = options.policy ?? new Policy();
  // What the node knows of a principal is its account and whether it is root; tokens narrower
  // than `full` never get this far (see authenticate), so the policy sees a full-scope account.
  const accountOf = (p: Principal): AccountPrincipal =>
    Object.freeze({ kind: 'account', name: p.account, role: p.root ? 'root' : 'user', tokenScope: 'full' });
  return {
    authenticate(headers) {
      let found: AccountPrincipal;
      try {
        found = platform.authenticate({ headers });
      } catch (e) {
        if (e instanceof AuthError && e.code === 'UNAUTHORIZED') return undefined;
        throw e;
      }
      // Registry-only tokens (CI pushing images, nodes pulling) are not platform credentials.
      if (found.tokenScope !== 'full') return undefined;
      return Object.freeze({ account: found.name, root: found.role === 'root' });
    },
    policy: {
      authorize(principal, action, object) {
        // Collection-level checks (may list, may create) are open to every account; objects are checked below.
        if (object.owner === undefined) return true;
        const verb = action === 'read' ? 'read' : 'write';
        if (object.kind === 'instance') return policy.authorize(accountOf(principal), verb, { kind: 'instance', owner: object.owner }).allow;
        // Images and the node itself: the same owner rule.
        return principal.root || principal.account === object.owner;
      },
    },
  };
}
