/**
 * The node as one process (`ukcd node`): one node:http server serving the
 * local registry on /v2 (image cache and push target) and the controller REST
 * API v1 on /v1, over the `micro` runtime, the node network and the image
 * cache backed by the central registry.
 *
 * Layout of `home` (everything the node keeps; nothing is lost on kill -9):
 *   registry/           blobs + registry.db of the local registry
 *   rootfs/             prepared root filesystems (EROFS image + mount, or extracted CPIO), per layer digest
 *   api/                instances.db and console logs
 *   runs/<uuid>/        the live run of an instance (console, events, overlay upper/work)
 *   runs/pool-<id>/     a pre-started launcher waiting to become a run (renamed to runs/<uuid>)
 *   network/            leases.json and the hosts file bound into instances
 *   api/tls/            the gateway's generated CA and wildcard certificate (keys 0600)
 *   api/services.db, api/certificates.db   service groups and user certificates
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { createRegistry, openStores, type Registry } from '../registry/index.js';
import { createNodeApi, type NodeApi } from './index.js';
import { LocalImages } from './images/local.js';
import { MicroDriver, type MicroDriverLimits } from './runtime/micro.js';
import { NodeNetwork, DEFAULT_NODE_NETWORK } from './network/index.js';
import type { NodeApiLimits, NodeGatewayOptions } from './index.js';

export interface NodeServerOptions {
  /** host and port to listen on (port 0 = any free one). */
  host: string;
  port: number;
  /** Central registry base URL, e.g. http://127.0.0.1:5000. */
  centralUrl?: string;
  /** Base URLs of other registries instances may pull images from (see images/local.ts `locateImage`). */
  allowedRegistries?: readonly string[];
  home: string;
  /** Bridge name and instance subnet. */
  bridge?: string;
  subnet?: string;
  /** Network namespaces kept ready for the next starts (default DEFAULT_NETNS_POOL_SIZE). */
  netnsPoolSize?: number;
  /** Cgroup parent of this node's instances (one per node, so two nodes never mix). */
  cgroupParent?: string;
  limits?: Partial<NodeApiLimits>;
  runtimeLimits?: Partial<MicroDriverLimits>;
  launcherPath?: string;
  /** The gateway (public ports, TLS, service groups); absent: no service groups on this node. */
  gateway?: NodeGatewayOptions;
}

export interface NodeServer {
  /** `http://host:port` */
  url: string;
  server: Server;
  api: NodeApi;
  registry: Registry;
  images: LocalImages;
  network: NodeNetwork;
  /** Stops serving; instances keep running (they are re-adopted at the next start). */
  close(): Promise<void>;
}

export async function startNodeServer(options: NodeServerOptions): Promise<NodeServer> {
  const home = options.home;
  mkdirSync(home, { recursive: true });
  const network = new NodeNetwork({
    bridge: options.bridge ?? DEFAULT_NODE_NETWORK.bridge,
    subnet: options.subnet ?? DEFAULT_NODE_NETWORK.subnet,
    stateDir: join(home, 'network'),
    ...(options.netnsPoolSize !== undefined ? { poolSize: options.netnsPoolSize } : {}),
  });
  await network.init();
  const { blobs, metadata } = openStores(join(home, 'registry'));
  const registry = createRegistry({ blobs, metadata });
  const server = createServer({ requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const hostText = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const images = new LocalImages({
    blobs,
    metadata,
    service: registry.service,
    cacheDir: join(home, 'rootfs'),
    registryHost: `${hostText}:${addr.port}`,
    ...(options.centralUrl ? { centralUrl: options.centralUrl } : {}),
    ...(options.allowedRegistries ? { allowedRegistries: options.allowedRegistries } : {}),
  });
  const driver = new MicroDriver({
    runsDir: join(home, 'runs'),
    network,
    cgroupParent: options.cgroupParent ?? '/ukc-node',
    ...(options.runtimeLimits ? { limits: options.runtimeLimits } : {}),
    ...(options.launcherPath ? { launcherPath: options.launcherPath } : {}),
  });
  let api: NodeApi;
  try {
    await driver.init();
    api = await createNodeApi({
      dataDir: join(home, 'api'),
      runtime: driver,
      images,
      catalog: images,
      ...(options.limits ? { limits: options.limits } : {}),
      ...(options.gateway ? { gateway: options.gateway } : {}),
    });
  } catch (err) {
    server.close();
    await registry.close();
    await metadata.close();
    await driver.close();
    await network.close();
    throw err;
  }
  server.on('request', (req, res) => {
    const url = req.url ?? '/';
    if (url === '/v2' || url.startsWith('/v2/')) registry.handler(req, res);
    else api.handler(req, res);
  });
  let closed = false;
  return {
    url: `http://${hostText}:${addr.port}`,
    server,
    api,
    registry,
    images,
    network,
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await api.close();
      images.close();
      await registry.close();
      await metadata.close();
      await driver.close();
      await network.close();
    },
  };
}
