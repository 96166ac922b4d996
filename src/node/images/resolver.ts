/**
 * How the lifecycle turns an image reference into something runnable. The
 * integration backs this with the node's local registry plus a pull from the
 * central registry. Errors meant for the client are `NodeError`s (ENOENT for an
 * unknown image, EACCES for refused credentials).
 */
import type { AccountPrincipal } from '../../auth/index.js';

export type PullPolicy = 'always' | 'never' | 'if_not_present';

export interface ImageRequest {
  /** As the user wrote it: `name:tag`, `owner/name@sha256:...`, a full registry address. */
  url: string;
  credentials?: { username: string; password: string };
  pullPolicy: PullPolicy;
}

export interface ImageConfig {
  Cmd?: string[];
  Entrypoint?: string[];
  Env?: string[];
  Labels?: Record<string, string>;
}

/** Opaque to the controller: what the runtime driver needs to mount the rootfs. */
export interface RootfsHandle {
  kind: string;
  [key: string]: unknown;
}

export interface ResolvedImage {
  /** `name@sha256:...`: pinned at create and reported by instances. */
  digestRef: string;
  config: ImageConfig;
  rootfs: RootfsHandle;
}

export interface ImageResolver {
  resolve(request: ImageRequest, principal: AccountPrincipal): Promise<ResolvedImage>;
}
