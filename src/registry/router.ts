/**
 * The route table: which handler serves which path and method, and which
 * repository and actions each needs. Authorisation is decided here, from the
 * route alone, before any handler runs.
 */
import type { RegistryAction } from './auth.js';
import { getBase } from './handlers/base.js';
import { deleteBlob, getBlob } from './handlers/blobs.js';
import { listCatalog } from './handlers/catalog.js';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.js';
import { getReferrers } from './handlers/referrers.js';
import { listTags } from './handlers/tags.js';
import { deleteUpload, getUpload, patchUpload, putUpload, startUpload } from './handlers/uploads.js';
import type { Handler } from './http.js';

export interface RouteMethod {
  handler: Handler;
  actions: RegistryAction[];
}

export interface Route {
  name: string;
  pattern: RegExp;
  /** The first capture is the repository name. */
  hasRepository: boolean;
  catalog?: boolean;
  methods: Record<string, RouteMethod>;
}

const pull = (handler: Handler): RouteMethod => ({ handler, actions: ['pull'] });
const push = (handler: Handler): RouteMethod => ({ handler, actions: ['push'] });
const del = (handler: Handler): RouteMethod => ({ handler, actions: ['delete'] });

// Order matters: upload paths before the blob path they would also match.
export const ROUTES: readonly Route[] = [
  { name: 'base', pattern: /^\/v2\/?$/, hasRepository: false, methods: { GET: { handler: getBase, actions: [] }, HEAD: { handler: getBase, actions: [] } } },
  { name: 'catalog', pattern: /^\/v2\/_catalog$/, hasRepository: false, catalog: true, methods: { GET: pull(listCatalog) } },
  { name: 'tags', pattern: /^\/v2\/(.+)\/tags\/list$/, hasRepository: true, methods: { GET: pull(listTags), HEAD: pull(listTags) } },
  {
    name: 'manifest',
    pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/,
    hasRepository: true,
    methods: { GET: pull(getManifest), HEAD: pull(getManifest), PUT: push(putManifest), DELETE: del(deleteManifest) },
  },
  { name: 'uploads', pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, hasRepository: true, methods: { POST: push(startUpload) } },
  {
    name: 'upload',
    pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/,
    hasRepository: true,
    methods: { GET: push(getUpload), PATCH: push(patchUpload), PUT: push(putUpload), DELETE: push(deleteUpload) },
  },
  { name: 'referrers', pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, hasRepository: true, methods: { GET: pull(getReferrers), HEAD: pull(getReferrers) } },
  {
    name: 'blob',
    pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/,
    hasRepository: true,
    methods: { GET: pull(getBlob), HEAD: pull(getBlob), DELETE: del(deleteBlob) },
  },
];

export function matchRoute(path: string): { route: Route; captures: string[] } | undefined {
  for (const route of ROUTES) {
    const m = route.pattern.exec(path);
    if (m) return { route, captures: m.slice(1) };
  }
  return undefined;
}
