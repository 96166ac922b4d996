/** Registry options: every limit is named here with its default. */
import type { BlobStore, MetadataStore } from '../store/index.js';
import type { Authorizer, RegistryAccessControl } from './auth.js';
import type { Logger } from '../log/index.js';

export interface RegistryLimits {
  /** Largest manifest accepted on PUT (bytes); larger answers 413. The spec asks for at least 4 MiB. */
  maxManifestBytes: number;
  /** Largest blob accepted (bytes); larger answers 413. */
  maxBlobBytes: number;
  /** Page size used when `n` is absent, and the clamp for any `n` (tags list, catalog). */
  maxPageSize: number;
  /**
   * Open upload sessions one principal may hold; beyond it 429 TOOMANYREQUESTS.
   * Counted from the metadata store, so the count survives restarts and drops as sessions are purged.
   */
  maxUploadsPerPrincipal: number;
  /** Seconds announced in `Retry-After` with a 429. */
  retryAfterSeconds: number;
  /** An upload session idle this long (ms) is purged. */
  uploadSessionTimeoutMs: number;
  /** How often the purge runs (ms); 0 disables the timer. */
  uploadPurgeIntervalMs: number;
  /** Longest repository name. */
  maxRepositoryNameLength: number;
  /** Referrers returned for one subject at most. */
  maxReferrers: number;
  /**
   * After an error answered before the request body was read (413, 400...),
   * up to this many more body bytes are read and dropped so the client can read
   * the answer instead of a connection reset; past it the connection is cut.
   */
  maxDrainBytes: number;
  /** How long (ms) such a drain may last before the connection is cut. */
  maxDrainMs: number;
}

export const DEFAULT_LIMITS: RegistryLimits = Object.freeze({
  maxManifestBytes: 4 * 1024 * 1024,
  maxBlobBytes: 64 * 1024 * 1024 * 1024,
  maxPageSize: 1000,
  maxUploadsPerPrincipal: 64,
  retryAfterSeconds: 60,
  uploadSessionTimeoutMs: 60 * 60 * 1000,
  uploadPurgeIntervalMs: 5 * 60 * 1000,
  maxRepositoryNameLength: 255,
  maxReferrers: 10_000,
  maxDrainBytes: 64 * 1024 * 1024,
  maxDrainMs: 5_000,
});

export interface RequestLogEntry {
  method: string;
  path: string;
  status: number;
  /** Request body bytes received (uploads and manifests). */
  bytesIn: number;
  /** Response body bytes sent (blobs, manifests, error documents). */
  bytesOut: number;
  durationMs: number;
}

export interface RegistryOptions {
  /** Data directory: blobs under <dataDir>/blobs..., metadata in <dataDir>/registry.db. Ignored when both stores are given. */
  dataDir?: string;
  blobs?: BlobStore;
  metadata?: MetadataStore;
  limits?: Partial<RegistryLimits>;
  /** Allow DELETE of manifests, tags and blobs (default true). When false those answer 405 UNSUPPORTED. */
  deleteEnabled?: boolean;
  /** The simple hook: decides each route's (repository, actions). Ignored when `access` is given. */
  authorizer?: Authorizer;
  /** The full access control (authorizer, mount rule, token endpoint), e.g. from `createRegistryAuth`. */
  access?: RegistryAccessControl;
  /** Called once per finished request (metrics, access logs, tests). */
  onRequest?: (entry: RequestLogEntry) => void;
  /** The role's logger (default: JSON lines on stderr). */
  logger?: Logger;
  /** Where unexpected (500) errors are reported; default: the current request's log line, else `logger`. */
  logError?: (err: unknown) => void;
  /** Clock, for tests (ms since the epoch). */
  now?: () => number;
}
