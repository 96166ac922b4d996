/**
 * Shared pieces of the node end-to-end tests: build the busybox image with the
 * project's packager, run `ukcd registry` (central) and `ukcd node` as real
 * processes, call the REST API, and clean up everything (instances, mounts,
 * bridge, cgroups, temp dirs). Each run uses its own bridge name, subnet and
 * cgroup parent so parallel test files never clash.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { copyFileSync, createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, randomInt } from 'node:crypto';
import { createServer as createNetServer } from 'node:net';
import { BlobDir, packageImage, packagePrebuiltInitrd } from '../../src/builder/package/index.js';
import { RegistryClient, pushImage } from '../../src/client/index.js';
import { readLeases } from '../../src/node/network/index.js';
import { detectCgroupLayout, freezerMountPoint, mountsUnder, unmount, removeBridge, removeCgroupParent, removeInstanceNetwork } from '../../src/sandbox/index.js';

export const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const UKCD = join(REPO_ROOT, 'bin', 'ukcd.js');
export const BUSYBOX = '/bin/busybox';

export interface TestEnv {
  dir: string;
  bridge: string;
  subnet: string;
  cgroupParent: string;
}

/**
 * A random 10.x.0.0/16 that no route on this machine uses yet (the host's own
 * networks, or another test file's bridge running at the same time).
 */
function freeSubnet(): string {
  const routes = execFileSync('ip', ['-4', 'route', 'show'], { encoding: 'utf8' });
  for (let i = 0; i < 200; i++) {
    const second = randomInt(100, 220);
    if (!new RegExp(`(^|\\s)10\\.${second}\\.`, 'm').test(routes)) return `10.${second}.0.0/16`;
  }
  throw new Error('no free 10.x.0.0/16 for a test bridge');
}

export function newEnv(prefix: string): TestEnv {
  const dir = mkdtempSync(join(tmpdir(), `ukc-${prefix}-`));
  return {
    dir,
    bridge: `ukcbr${randomBytes(2).toString('hex')}`,
    subnet: freeSubnet(),
    cgroupParent: `/ukc-test-${randomBytes(4).toString('hex')}`,
  };
}

/** A busybox rootfs: /bin/busybox with applet links, /www/index.html. */
export function busyboxRootfs(dir: string, page: string): string {
  const root = join(dir, 'rootfs');
  mkdirSync(join(root, 'bin'), { recursive: true });
  mkdirSync(join(root, 'www'), { recursive: true });
  mkdirSync(join(root, 'tmp'), { recursive: true });
  mkdirSync(join(root, 'etc'), { recursive: true });
  copyFileSync(BUSYBOX, join(root, 'bin', 'busybox'));
  for (const applet of ['sh', 'httpd', 'cat', 'ls', 'echo', 'sleep', 'dd', 'grep', 'find', 'hostname', 'ps', 'wget', 'head', 'seq']) {
    symlinkSync('busybox', join(root, 'bin', applet));
  }
  writeFileSync(join(root, 'www', 'index.html'), page);
  return root;
}

export interface BuiltImage {
  manifest: Buffer;
  mediaType: string;
  digest: string;
}

/**
 * Packages the rootfs (EROFS initrd by default, or CPIO newc; Unikraft layout) and pushes it to `registryUrl` as `repository:tag`.
 * With `format: { initrd }` an initrd file made elsewhere (e.g. a hostile CPIO from GNU cpio) is pushed byte for byte instead.
 */
export async function buildAndPush(
  env: TestEnv,
  rootfs: string,
  registryUrl: string,
  repository: string,
  tag: string,
  cmd: string[],
  format: 'erofs' | 'cpio' | { initrd: string } = 'erofs',
): Promise<BuiltImage> {
  const blobs = new BlobDir(join(env.dir, 'build-blobs'));
  const run = { cmd, env: ['PATH=/bin'], labels: {} };
  const img = typeof format === 'object'
    ? await packagePrebuiltInitrd(format.initrd, { epoch: 0, name: repository, run, blobs })
    : await packageImage({ rootfsDir: rootfs, format, epoch: 0, name: repository, run, blobs });
  const client = new RegistryClient({ baseUrl: registryUrl });
  try {
    const all = [img.config, ...img.layers];
    const manifestBytes = Buffer.from(await (await import('node:fs/promises')).readFile(img.manifest.path));
    await pushImage({
      client,
      repository,
      tag,
      manifest: { bytes: manifestBytes, mediaType: img.manifestMediaType },
      blobs: (d) => {
        const b = all.find((x) => x.digest.text === d.digest);
        if (!b) throw new Error(`unknown blob ${d.digest}`);
        return { size: b.size, open: () => createReadStream(b.path) };
      },
    });
    return { manifest: manifestBytes, mediaType: img.manifestMediaType, digest: img.manifest.digest.text };
  } finally {
    client.close();
  }
}

export interface Daemon {
  child: ChildProcess;
  url: string;
  output: () => string;
  /** For nodes started by `startNode`: root's API token (also used by `api` for this URL). */
  token?: string;
}

/** Root's token per node URL, so `api(node.url, ...)` authenticates without every test passing it. */
const rootTokenOf = new Map<string, string>();

/** Starts `node bin/ukcd.js ARGS` and waits for its "listening on URL" line. */
export function startDaemon(args: string[], timeoutMs = 20_000): Promise<Daemon> {
  const child = spawn(process.execPath, [UKCD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ukcd ${args[0]} did not start:\n${out}`)), timeoutMs);
    const onData = (d: Buffer): void => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, url: m[1] as string, output: () => out });
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ukcd ${args[0]} exited (${code}):\n${out}`));
    });
  });
}

export function startCentral(env: TestEnv): Promise<Daemon> {
  return startDaemon(['registry', '--listen', '127.0.0.1:0', '--data', join(env.dir, 'central')]);
}

/** The accounts database of the test's nodes (`root-token` is written beside it at first start). */
export function accountsDb(env: TestEnv): string {
  return join(env.dir, 'accounts', 'auth.db');
}

/**
 * Starts `ukcd node` with the test's accounts database, plus `extraArgs`; when
 * `extraArgs` chooses the authentication itself (`--auth-url`, `--no-auth`,
 * `--accounts-db`), the default database is not added.
 */
export async function startNode(env: TestEnv, centralUrl: string, listen = '127.0.0.1:0', extraArgs: readonly string[] = []): Promise<Daemon> {
  mkdirSync(join(env.dir, 'accounts'), { recursive: true, mode: 0o700 });
  const ownAuth = extraArgs.some((a) => a === '--auth-url' || a === '--no-auth' || a === '--accounts-db');
  const d = await startDaemon([
    'node', '--listen', listen, '--central', centralUrl, '--home', join(env.dir, 'node'),
    '--bridge', env.bridge, '--subnet', env.subnet, '--cgroup-parent', env.cgroupParent,
    ...(ownAuth ? [] : ['--accounts-db', accountsDb(env)]),
    ...extraArgs,
  ]);
  const tokenFile = join(env.dir, 'accounts', 'root-token');
  if (!ownAuth && existsSync(tokenFile)) {
    d.token = readFileSync(tokenFile, 'utf8').trim();
    rootTokenOf.set(d.url, d.token);
  }
  return d;
}

export async function stopDaemon(d: Daemon | undefined, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (!d || d.child.exitCode !== null || d.child.signalCode !== null) return;
  const done = new Promise<void>((r) => d.child.once('exit', () => r()));
  d.child.kill(signal);
  const t = setTimeout(() => d.child.kill('SIGKILL'), 10_000);
  await done;
  clearTimeout(t);
}

export interface ApiResult {
  status: number;
  body: { status: string; message?: string; data?: Record<string, unknown>; errors?: unknown[] };
}

/** Calls the v1 API; `token` defaults to root's token of a node started by `startNode` at `base`. */
export async function api(base: string, method: string, path: string, body?: unknown, token: string | undefined = rootTokenOf.get(base)): Promise<ApiResult> {
  const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`; // an empty token: an anonymous request
  const res = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(60_000),
  });
  return { status: res.status, body: (await res.json()) as ApiResult['body'] };
}

export type Instance = Record<string, unknown> & { uuid: string; name: string; state: string };

export async function getInstance(base: string, name: string): Promise<Instance> {
  const r = await api(base, 'GET', `/v1/instances/${name}`);
  const list = r.body.data?.instances as Instance[] | undefined;
  if (!list?.[0]) throw new Error(`GET ${name}: ${JSON.stringify(r.body)}`);
  return list[0];
}

/** Polls the instance until `pred` holds (bounded). */
export async function waitInstance(base: string, name: string, pred: (i: Instance) => boolean, timeoutMs = 20_000): Promise<Instance> {
  const deadline = Date.now() + timeoutMs;
  let last: Instance | undefined;
  while (Date.now() < deadline) {
    last = await getInstance(base, name);
    if (pred(last)) return last;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`instance ${name} never matched; last: ${JSON.stringify(last)}`);
}

export async function instanceLog(base: string, name: string): Promise<string> {
  const r = await api(base, 'GET', `/v1/instances/${name}/log`);
  const item = (r.body.data?.instances as { output?: string }[] | undefined)?.[0];
  return Buffer.from(item?.output ?? '', 'base64').toString('utf8');
}

/** Fetches a page (bounded retries while the app comes up). */
export async function fetchText(url: string, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      return await res.text();
    } catch (err) {
      lastErr = err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`fetch ${url} failed: ${String(lastErr)}`);
}

/** Removes what a test run made on the host: leftover instance processes (via cgroups), mounts, bridge, temp dir. */
export async function cleanupEnv(env: TestEnv): Promise<void> {
  const layout = detectCgroupLayout();
  const roots = layout.version === 2 ? [layout.mountPoint] : [layout.mountPoints.memory, layout.mountPoints.pids];
  // Frozen (stateful standby) tasks cannot die: thaw whatever a test left frozen first.
  const freezerMount = layout.version === 1 ? freezerMountPoint(readFileSync('/proc/self/mountinfo', 'utf8')) : undefined;
  const freezerParent = freezerMount === undefined ? undefined : join(freezerMount, env.cgroupParent);
  const frozenGroups = (): string[] =>
    freezerParent !== undefined && existsSync(freezerParent)
      ? readdirSync(freezerParent, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(freezerParent, d.name))
      : [];
  for (const dir of frozenGroups()) writeFileSync(join(dir, 'freezer.state'), 'THAWED');
  if (layout.version === 2) {
    const parent = join(layout.mountPoint, env.cgroupParent);
    if (existsSync(parent)) {
      for (const d of readdirSync(parent, { withFileTypes: true })) {
        if (d.isDirectory() && existsSync(join(parent, d.name, 'cgroup.freeze'))) writeFileSync(join(parent, d.name, 'cgroup.freeze'), '0');
      }
    }
  }
  for (let round = 0; round < 50; round++) {
    let left = 0;
    for (const r of roots) {
      const parent = join(r, env.cgroupParent);
      if (!existsSync(parent)) continue;
      for (const child of readdirSync(parent, { withFileTypes: true })) {
        if (!child.isDirectory()) continue;
        for (const pid of readFileSync(join(parent, child.name, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          left++;
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
    }
    if (left === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const networkState = join(env.dir, 'node', 'network');
  if (existsSync(networkState)) {
    for (const [key, lease] of readLeases(networkState)) await removeInstanceNetwork(lease.netns ?? `ukc-${key}`);
  }
  for (const dir of frozenGroups()) {
    try {
      rmdirSync(dir);
    } catch {
      // still busy; removed with the parent below when possible
    }
  }
  if (freezerParent !== undefined && existsSync(freezerParent)) {
    try {
      rmdirSync(freezerParent);
    } catch {
      // a group is still busy
    }
  }
  try {
    removeCgroupParent(env.cgroupParent);
  } catch {
    // nothing left or still busy; the kernel frees empty groups with the parent later
  }
  for (const m of mountsUnder(env.dir).reverse()) await unmount(m.mountPoint, { lazyFallback: true }).catch(() => undefined);
  await removeBridge(env.bridge);
  // The node's tenant rules for this bridge, when a test left instances (and so the tables) behind.
  const table = `ukc_${env.bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;
  for (const family of ['bridge', 'inet']) spawnSync('nft', ['delete', 'table', family, table], { stdio: 'ignore' });
  rmSync(env.dir, { recursive: true, force: true });
}

/**
 * A loopback port free right now, for a port a test maps (the gateway's `--port-map`) and a
 * daemon binds later. Taken below the kernel's ephemeral range (ip_local_port_range, 32768–60999
 * by default), so the outgoing connections of tests running beside this one cannot be handed
 * it in between (a port from `listen(0)` comes from that range and was seen taken).
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = randomInt(20_000, 32_000);
    const free = await new Promise<boolean>((resolve) => {
      const srv = createNetServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free loopback port found in 20000–32000');
}
