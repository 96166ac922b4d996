/**
 * The operations of the contract (the official SDK's 89 platform operations) that a ukc node
 * does not offer, as data: each answers EOPNOTSUPP (HTTP 501) in the envelope with what is
 * missing, never 404 or 405. Literal paths (`/v1/instances/checkpoints`, `/v1/services/autoscale`)
 * win over the `{uuid}` routes (src/api's router), so they are not taken for names.
 *
 * When one of these becomes real, its routes replace the entries here (a test checks that no
 * entry shadows a served route).
 */
import { unsupportedRoute, type Route } from '../api/index.js';

type Op = readonly [Route['method'], string];

interface Unsupported {
  message: string;
  collection?: string;
  ops: readonly Op[];
}

const batchAndSingle = (method: Route['method'], base: string, suffix = ''): Op[] => [
  [method, `${base}${suffix}`],
  [method, `${base}/{uuid}${suffix}`],
];

export const UNSUPPORTED_OPERATIONS: readonly Unsupported[] = [
  {
    message: 'instance checkpoints are not supported on this platform',
    collection: 'instances',
    ops: [
      ['POST', '/v1/instances/checkpoints'],
      ...batchAndSingle('GET', '/v1/instances/checkpoints'),
      ...batchAndSingle('PATCH', '/v1/instances/checkpoints'),
      ...batchAndSingle('DELETE', '/v1/instances/checkpoints'),
      ...batchAndSingle('GET', '/v1/instances/checkpoints', '/history'),
      ...batchAndSingle('GET', '/v1/instances', '/history'),
    ],
  },
  {
    message: 'instance templates are not supported on this platform',
    collection: 'instances',
    ops: [
      ['POST', '/v1/instances/templates'],
      ...batchAndSingle('GET', '/v1/instances/templates'),
      ...batchAndSingle('PATCH', '/v1/instances/templates'),
      ...batchAndSingle('DELETE', '/v1/instances/templates'),
    ],
  },
  {
    message: 'suspending instances (snapshot to memory) is not supported on this platform: stop them, or use scale_to_zero',
    collection: 'instances',
    ops: batchAndSingle('PUT', '/v1/instances', '/suspend'),
  },
  {
    message: 'volumes are not supported on this platform yet',
    collection: 'volumes',
    ops: [
      ['POST', '/v1/volumes'],
      ...batchAndSingle('GET', '/v1/volumes'),
      ...batchAndSingle('PATCH', '/v1/volumes'),
      ...batchAndSingle('DELETE', '/v1/volumes'),
      ...batchAndSingle('PUT', '/v1/volumes', '/attach'),
      ...batchAndSingle('PUT', '/v1/volumes', '/detach'),
      ...batchAndSingle('POST', '/v1/volumes', '/clone'),
      ['POST', '/v1/volumes/templates'],
      ...batchAndSingle('GET', '/v1/volumes/templates'),
      ...batchAndSingle('PATCH', '/v1/volumes/templates'),
      ...batchAndSingle('DELETE', '/v1/volumes/templates'),
    ],
  },
  {
    message: 'autoscale configurations are not supported on this platform: set soft_limit and hard_limit on the service group',
    ops: [
      ['POST', '/v1/services/autoscale'],
      ['GET', '/v1/services/autoscale'],
      ['DELETE', '/v1/services/autoscale'],
      ['POST', '/v1/services/{uuid}/autoscale'],
      ['GET', '/v1/services/{uuid}/autoscale'],
      ['DELETE', '/v1/services/{uuid}/autoscale'],
      ['POST', '/v1/services/{uuid}/autoscale/policies'],
      ['GET', '/v1/services/{uuid}/autoscale/policies'],
      ['DELETE', '/v1/services/{uuid}/autoscale/policies'],
      ['GET', '/v1/services/{uuid}/autoscale/policies/{name}'],
      ['DELETE', '/v1/services/{uuid}/autoscale/policies/{name}'],
    ],
  },
  {
    message: 'pinning images and the image store are not supported on this node yet: images are cached when instances use them',
    collection: 'images',
    ops: [
      ['POST', '/v1/images'],
      ['DELETE', '/v1/images'],
      ['GET', '/v1/image-store'],
    ],
  },
];

export function unsupportedRoutes(): Route[] {
  return UNSUPPORTED_OPERATIONS.flatMap((u) => u.ops.map(([method, pattern]) => unsupportedRoute(method, pattern, u.message, u.collection)));
}
