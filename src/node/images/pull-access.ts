/**
 * Who may run which image on the node (security case 14, images).
 *
 * The node's local registry doubles as an image cache shared by every tenant:
 * once alice's `alice/app` was pulled, its bytes sit on the node. Without a
 * check, bob could name `alice/app` at instance create and run it. So before an
 * image is resolved for a create, the caller's right to *pull* the repository
 * the reference maps to is checked with the platform policy (src/auth/policy.ts:
 * the owner's namespace, `official/*` and `library/*` for everyone, root for
 * everything, an image's listed readers).
 *
 * Invariant: a refusal answers exactly like a name that does not exist
 * (ENOENT, `IMAGE_NOT_FOUND_MESSAGE`), and the check depends only on the name,
 * never on whether the image is cached — so nobody learns what another tenant
 * has pulled.
 *
 * References to another registry allowed on this node (`ext-*` cache
 * namespaces) are left to that registry: its credentials travel with the
 * request. References the node refuses to locate (bad syntax, a host not
 * allowed) fall through so the resolver gives its usual error.
 */
import type { AccountPrincipal } from '../../auth/index.js';
import { NodeError } from '../errors.js';
import type { ImageLocation } from './local.js';

/** True when `principal` may run the image `url` names. */
export type ImagePullCheck = (principal: AccountPrincipal, url: string) => boolean;

/** The repository-level decision (src/auth's `Policy` asked for `pull` on the repository). */
export type RepositoryPullDecision = (principal: AccountPrincipal, repository: string) => boolean;

/** The one message for a missing image and for one the caller may not see. */
export function imageNotFoundMessage(url: string): string {
  return `image ${url} not found`;
}

/**
 * Builds the create-time check from the node's reference rules (`LocalImages.locate`
 * or `locateImage`) and the platform's pull decision.
 */
export function imagePullCheck(locate: (url: string) => ImageLocation, mayPull: RepositoryPullDecision): ImagePullCheck {
  return (principal, url) => {
    if (principal.role === 'root') return true;
    let loc: ImageLocation;
    try {
      loc = locate(url);
    } catch (err) {
      // The resolver answers bad references and refused hosts itself.
      if (err instanceof NodeError) return true;
      throw err;
    }
    if (loc.origin.kind === 'allowed') return true;
    return mayPull(principal, loc.repository);
  };
}
