/**
 * `unikraft build` end to end: Kraftfile (or a lone Dockerfile) → executor →
 * runtime base rootfs laid under the app's → Unikraft-layout packaging →
 * output (registry push, OCI layout dir, .oci.tar). Every stage is cached: an
 * unchanged rebuild reads only keys and writes the output.
 */
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, stat } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createHash } from 'node:crypto';
import { basename, join, resolve } from 'node:path';
import { spawn } from 'node:child_process';
import { BuildCache, hashOf } from '../cache/cache.js';
import { findKraftfile, loadKraftfile, type LoadedKraftfile } from '../kraftfile.js';
import { parseReference, parseUnikraftReference, formatReference, type ImageReference } from '../../oci/index.js';
import { parseDigest } from '../../oci/index.js';
import { RegistryClient, type MirrorOptions } from '../../client/index.js';
import type { Credentials } from '../../client/index.js';
import { isLoopbackHost } from '../../client/index.js';
import { buildDockerfile, type BuildResult, type StageConfig } from './executor.js';
import { pullToBlobDir, registryImageResolver } from './images.js';
import type { UrlPolicy } from './download.js';
import type { ArchiveLimits } from './archive.js';
import type { ExtractLimits } from '../../oci/index.js';
import { mergeRunConfig, type RunConfig } from '../package/config.js';
import { packageImage, packagePrebuiltInitrd, type PackagedImage } from '../package/image.js';
import type { RootfsFormat } from '../package/initrd.js';
import { parseOutput, pushToRegistry, writeLayout, writeLayoutArchive, type ImageBlobs, type OutputTarget } from '../package/output.js';
import { runtimeInfo, unpackRuntimeRootfs, type RuntimeInfo } from '../package/runtime.js';
import type { StoredBlob } from '../package/blobs.js';
import { checkErofsImage, sha256File, unpackRootfsFile, type RootfsFileKind } from './rootfs-file.js';

export interface ProjectBuildOptions {
  /** The project directory (Kraftfile and/or Dockerfile). */
  dir: string;
  /** `-K`: a Kraftfile path. */
  kraftfile?: string;
  output: string;
  cwd: string;
  cacheDir: string;
  buildArgs?: Record<string, string>;
  buildContexts?: Record<string, string>;
  noCache?: boolean;
  target?: string;
  rootfsFormat?: RootfsFormat;
  insecure?: boolean;
  /** Central registry (`host:port`): runtimes (`official/…`), refs without a domain, and a mirror for Docker Hub names. */
  registry?: string;
  /** More mirrors for Docker Hub names (`http://host:port` or `host:port`). */
  mirrors?: string[];
  /**
   * Credentials for a registry host (`host[:port]`, as a reference or mirror
   * names it), asked for every registry the build pulls from or pushes to —
   * upstreams and mirrors alike; undefined sends none. The CLI answers only for
   * the platform's own registries.
   */
  credentialsFor?: (host: string) => Credentials | undefined;
  /** SOURCE_DATE_EPOCH (seconds); default 0. */
  epoch?: number;
  cliArgs?: string[];
  urlPolicy?: UrlPolicy;
  /** Caps for extracting base-image layers (FROM): bytes, entries, depth. */
  layerLimits?: Partial<ExtractLimits>;
  /** Caps for ADD archives. */
  archiveLimits?: Partial<ArchiveLimits>;
  /** Caps for extracting a Kraftfile rootfs given as a tarball or CPIO archive (defaults: src/oci's DEFAULT_EXTRACT_LIMITS). */
  rootfsLimits?: Partial<ExtractLimits>;
  log?: (line: string) => void;
  output_?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export interface ProjectBuildResult {
  name: string;
  manifestDigest: string;
  image: PackagedImage;
  build: BuildResult | undefined;
  packagingCached: boolean;
  pushed?: { ref: string; bytes: number; uploaded: number; ms: number };
  kernelLess: boolean;
}

function baseUrl(host: string, insecure: boolean): string {
  if (/^https?:\/\//.test(host)) return host;
  const hostname = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return `${isLoopbackHost(hostname) || insecure ? 'http' : 'https'}://${host}`;
}

/** The image name a project builds to (its Kraftfile's `name`, else its directory's), as `build` and `run DIR` name it. */
export async function projectImageName(dir: string, kraftfilePath?: string): Promise<string> {
  const path = kraftfilePath ?? (await findKraftfile(dir));
  return imageName(dir, path ? await loadKraftfile(path) : undefined);
}

function imageName(dir: string, kraftfile: LoadedKraftfile | undefined): string {
  const raw = kraftfile?.name ?? basename(resolve(dir));
  const cleaned = raw.toLowerCase().replace(/\./g, '').replace(/[^a-z0-9_-]/g, '-');
  return cleaned || 'app';
}

function explicitDomain(ref: string): string | undefined {
  const first = ref.split('/')[0] ?? '';
  return ref.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost') ? first : undefined;
}

/** What every step of a project build shares: the options, the cache, the log and the registry clients. */
interface BuildContext {
  opts: ProjectBuildOptions;
  log: (line: string) => void;
  epoch: number;
  cache: BuildCache;
  /** The central registry (`--registry`, or the output reference's own host). */
  central: string | undefined;
  clientFor: (domain: string) => RegistryClient;
}

/** Step 1's answer: what to build. */
interface ProjectPlan {
  kraftfile: LoadedKraftfile | undefined;
  name: string;
  /** Exactly one of the three rootfs sources is set. */
  dockerfilePath: string | undefined;
  contextDir: string;
  rootfsDirInput: string | undefined;
  rootfsFile: { kind: RootfsFileKind; path: string } | undefined;
  format: RootfsFormat;
}

/** Step 2's answer: the app's rootfs and its cache key. */
interface AppRootfs {
  build: BuildResult | undefined;
  appRoot: string;
  appKey: string;
  dockerConfig: StageConfig | undefined;
  /** An EROFS rootfs packaged as EROFS with nothing laid under it is the initrd as it is. */
  prebuiltInitrd: string | undefined;
}

/** Step 3's answer: the runtime and the final rootfs (the app's over the runtime's base). */
interface RuntimeRootfs {
  runtime: RuntimeInfo;
  rootKey: string;
  finalRoot: string;
}

/** One registry client per domain, created on first use; Docker Hub names go through the central registry and the mirrors. */
function registryClients(opts: ProjectBuildOptions, central: string | undefined): (domain: string) => RegistryClient {
  const insecure = opts.insecure ?? false;
  const clients = new Map<string, RegistryClient>();
  return (domain: string): RegistryClient => {
    let c = clients.get(domain);
    if (!c) {
      const credentialsFor = opts.credentialsFor ?? (() => undefined);
      const mirror = (host: string): MirrorOptions => {
        const credentials = credentialsFor(host);
        return { baseUrl: baseUrl(host, insecure), ...(insecure ? { insecure } : {}), ...(credentials ? { credentials } : {}) };
      };
      const mirrors: MirrorOptions[] = [];
      if (domain === 'docker.io') {
        if (central) mirrors.push(mirror(central));
        for (const m of opts.mirrors ?? []) mirrors.push(mirror(m));
      }
      const credentials = credentialsFor(domain);
      c = new RegistryClient({
        baseUrl: domain === 'docker.io' ? 'https://registry-1.docker.io' : baseUrl(domain, insecure),
        insecure,
        mirrors,
        retries: 1,
        ...(credentials ? { credentials } : {}),
      });
      clients.set(domain, c);
    }
    return c;
  };
}

/**
 * Builds (and outputs) a project. A build that fails before its image is packaged leaves the
 * cache as it found it: the states and blobs it added are removed (a failed output or push
 * keeps the packaged image, which the next attempt reuses).
 */
export async function buildProject(opts: ProjectBuildOptions): Promise<ProjectBuildResult> {
  const dir = resolve(opts.cwd, opts.dir);
  const target = parseOutput(opts.output, opts.cwd);
  const central = opts.registry ?? (target.kind === 'registry' ? explicitDomain(target.ref) : undefined);
  const ctx: BuildContext = {
    opts,
    log: opts.log ?? (() => undefined),
    epoch: opts.epoch ?? 0,
    cache: new BuildCache(opts.cacheDir),
    central,
    clientFor: registryClients(opts, central),
  };
  const refName = target.kind === 'registry' ? (parseReference(target.ref).tag ?? 'latest') : 'latest';
  let packaged: Awaited<ReturnType<typeof packageProject>>;
  let plan: ProjectPlan;
  let app: AppRootfs;
  let rt: RuntimeRootfs;
  try {
    plan = await planProject(ctx, dir);
    app = await buildAppRootfs(ctx, plan);
    rt = await layRuntime(ctx, plan, app);
    packaged = await packageProject(ctx, plan, app, rt, refName);
  } catch (err) {
    const removed = await ctx.cache.discardCreated().catch(() => undefined);
    if (removed && removed.states + removed.blobs > 0) ctx.log(`build failed: removed ${removed.states} cache states and ${removed.blobs} blobs it had added`);
    throw err;
  }
  const { image, packagingCached } = packaged;
  const result: ProjectBuildResult = {
    name: plan.name,
    manifestDigest: image.manifest.digest.text,
    image,
    build: app.build,
    packagingCached,
    kernelLess: !rt.runtime.kernelLayer,
  };
  const pushed = await writeOutput(ctx, target, image, refName);
  if (pushed) result.pushed = pushed;
  return result;
}

/** 1. What to build: the Kraftfile (if any), the image name, the rootfs source and format. */
async function planProject(ctx: BuildContext, dir: string): Promise<ProjectPlan> {
  const { opts } = ctx;
  const kraftPath = opts.kraftfile ? resolve(opts.cwd, opts.kraftfile) : await findKraftfile(dir);
  const kraftfile = kraftPath ? await loadKraftfile(kraftPath) : undefined;
  const name = imageName(dir, kraftfile);
  let dockerfilePath: string | undefined;
  let contextDir = dir;
  let rootfsDirInput: string | undefined;
  let rootfsFile: { kind: RootfsFileKind; path: string } | undefined;
  const rf = kraftfile?.rootfsResolved;
  if (rf) {
    if (rf.kind === 'dockerfile') {
      dockerfilePath = rf.dockerfile;
      contextDir = rf.context;
    } else if (rf.kind === 'directory') {
      rootfsDirInput = rf.path;
    } else {
      rootfsFile = { kind: rf.kind, path: rf.path };
    }
  } else {
    const df = join(dir, 'Dockerfile');
    if (!(await stat(df).catch(() => undefined))) throw new Error(`no Kraftfile rootfs and no Dockerfile in ${dir}`);
    dockerfilePath = df;
  }
  const format: RootfsFormat = opts.rootfsFormat ?? rf?.format ?? 'erofs';
  return { kraftfile, name, dockerfilePath, contextDir, rootfsDirInput, rootfsFile, format };
}

/** 2. The app's rootfs: a rootfs file (unpacked, or an EROFS image as it is), a Dockerfile build, or a directory. */
async function buildAppRootfs(ctx: BuildContext, plan: ProjectPlan): Promise<AppRootfs> {
  const { opts, cache, log } = ctx;
  const { rootfsFile, dockerfilePath, kraftfile, format } = plan;
  if (rootfsFile) {
    const appKey = hashOf('ukc-file-rootfs-v1', rootfsFile.kind, await sha256File(rootfsFile.path));
    if (rootfsFile.kind === 'erofs' && format === 'erofs' && !kraftfile?.runtime) {
      await checkErofsImage(rootfsFile.path);
      log(`rootfs ${basename(rootfsFile.path)}: EROFS image used as the initrd as it is`);
      return { build: undefined, appRoot: rootfsFile.path, appKey, dockerConfig: undefined, prebuiltInitrd: rootfsFile.path };
    }
    const hit = opts.noCache ? undefined : await cache.getState<Record<string, never>>(appKey);
    if (hit) {
      log(`rootfs ${basename(rootfsFile.path)} (${rootfsFile.kind}) unpacked  CACHED`);
      return { build: undefined, appRoot: cache.rootfsOf(hit.fsKey), appKey, dockerConfig: undefined, prebuiltInitrd: undefined };
    }
    await mkdir(opts.cacheDir, { recursive: true });
    const work = await mkdtemp(join(opts.cacheDir, 'rootfs-'));
    try {
      const tree = join(work, 'rootfs');
      await unpackRootfsFile(rootfsFile.kind, rootfsFile.path, tree, {
        ...(opts.rootfsLimits ? { limits: opts.rootfsLimits } : {}),
        onWarning: (m) => log(`warning: ${m}`),
      });
      const st = await cache.putState(appKey, {}, { rootfs: tree }, { replace: opts.noCache === true });
      log(`rootfs ${basename(rootfsFile.path)} (${rootfsFile.kind}) unpacked`);
      return { build: undefined, appRoot: cache.rootfsOf(st.fsKey), appKey, dockerConfig: undefined, prebuiltInitrd: undefined };
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  }
  if (dockerfilePath) {
    const build = await buildDockerfile({
      contextDir: plan.contextDir,
      dockerfile: await readFile(dockerfilePath, 'utf8'),
      dockerfileName: basename(dockerfilePath),
      dockerfilePath,
      cache,
      ...(opts.buildArgs ? { buildArgs: opts.buildArgs } : {}),
      ...(opts.buildContexts ? { buildContexts: opts.buildContexts } : {}),
      ...(opts.noCache ? { noCache: true } : {}),
      ...(opts.target ? { target: opts.target } : {}),
      ...(opts.urlPolicy ? { urlPolicy: opts.urlPolicy } : {}),
      ...(opts.output_ ? { output: opts.output_ } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.archiveLimits ? { archiveLimits: opts.archiveLimits } : {}),
      resolveImage: registryImageResolver({
        clientFor: ctx.clientFor,
        blobs: cache.blobs,
        ...(opts.layerLimits ? { limits: opts.layerLimits } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      }),
      log,
    });
    return { build, appRoot: build.rootfs, appKey: build.key, dockerConfig: build.config, prebuiltInitrd: undefined };
  }
  const appRoot = plan.rootfsDirInput as string;
  // Keyed by what the tree holds (paths, types, modes, mtimes, link targets,
  // contents), so an unchanged directory rebuilds from the cache.
  const appKey = hashOf('dir-rootfs-v2', await digestTree(appRoot));
  return { build: undefined, appRoot, appKey, dockerConfig: undefined, prebuiltInitrd: undefined };
}

/** 3. The runtime: kernel layer, base rootfs under the app's, its command. */
async function layRuntime(ctx: BuildContext, plan: ProjectPlan, app: AppRootfs): Promise<RuntimeRootfs> {
  const { opts, cache, log, central } = ctx;
  const { kraftfile } = plan;
  if (!kraftfile?.runtime) return { runtime: {}, rootKey: app.appKey, finalRoot: app.appRoot };
  if (!central) throw new Error(`the Kraftfile names runtime ${kraftfile.runtime}: give --registry (the central registry holding official/ runtimes)`);
  const ref = parseUnikraftReference(kraftfile.runtime, central);
  log(`runtime ${formatReference(ref)}`);
  const pulled = await pullToBlobDir(formatReference(ref), { clientFor: ctx.clientFor, blobs: cache.blobs, rules: { defaultDomain: central, officialNamespace: 'official', domainAliases: [] } });
  const rtKey = hashOf('ukc-runtime-v1', pulled.manifestDigest);
  const runtime = runtimeInfo(pulled);
  const rootKey = hashOf('ukc-merged-v1', app.appKey, rtKey);
  const hit = opts.noCache ? undefined : await cache.getState<Record<string, never>>(rootKey);
  if (hit) {
    log(`runtime base rootfs under the app's  CACHED`);
    return { runtime, rootKey, finalRoot: cache.rootfsOf(hit.fsKey) };
  }
  const work = await mkdtemp(join(opts.cacheDir, 'rt-'));
  try {
    const baseDir = join(work, 'base');
    await unpackRuntimeRootfs(pulled, baseDir, cache.blobs, opts.layerLimits ?? {});
    await overlayTree(app.appRoot, baseDir);
    const st = await cache.putState(rootKey, {}, { rootfs: baseDir }, { replace: opts.noCache === true });
    return { runtime, rootKey, finalRoot: cache.rootfsOf(st.fsKey) };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** The run config from the CLI arguments, the Kraftfile, the runtime and the Dockerfile's final stage. */
function runConfigOf(opts: ProjectBuildOptions, kraftfile: LoadedKraftfile | undefined, runtime: RuntimeInfo, dockerConfig: StageConfig | undefined): RunConfig {
  return mergeRunConfig({
    ...(opts.cliArgs && opts.cliArgs.length ? { cliArgs: opts.cliArgs } : {}),
    ...(kraftfile ? { kraftfile: { ...(kraftfile.cmd ? { cmd: kraftfile.cmd } : {}), env: kraftfile.env, labels: kraftfile.labels } } : {}),
    runtime,
    ...(dockerConfig
      ? {
          dockerfile: {
            ...(dockerConfig.entrypoint ? { entrypoint: dockerConfig.entrypoint } : {}),
            ...(dockerConfig.cmd ? { cmd: dockerConfig.cmd } : {}),
            env: dockerConfig.env,
            labels: dockerConfig.labels,
            ...(dockerConfig.workingDir && dockerConfig.workingDir !== '/' ? { workingDir: dockerConfig.workingDir } : {}),
            ...(dockerConfig.user ? { user: dockerConfig.user } : {}),
          },
        }
      : {}),
  });
}

/** 4. Packaging (cached by the rootfs key and everything that reaches the config). */
async function packageProject(
  ctx: BuildContext,
  plan: ProjectPlan,
  app: AppRootfs,
  rt: RuntimeRootfs,
  refName: string,
): Promise<{ image: PackagedImage; packagingCached: boolean }> {
  const { opts, cache, log, epoch } = ctx;
  const { name, format } = plan;
  const { runtime } = rt;
  const prebuiltInitrd = app.prebuiltInitrd;
  const run = runConfigOf(opts, plan.kraftfile, runtime, app.dockerConfig);
  const pkgKey = hashOf('ukc-package-v1', prebuiltInitrd ? 'prebuilt' : 'made', rt.rootKey, JSON.stringify(run), format, String(epoch), name, refName, runtime.kernelLayer?.digest.text ?? '');
  const cachedImage = opts.noCache ? undefined : await cache.getImage(pkgKey);
  if (cachedImage) {
    const blob = async (d: string): Promise<StoredBlob> => (await cache.blobs.has(parseDigest(d))) as StoredBlob;
    const image: PackagedImage = {
      manifest: await blob(cachedImage.manifest),
      manifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: await blob(cachedImage.config),
      layers: await Promise.all(cachedImage.layers.map(blob)),
      initrd: await blob(cachedImage.initrd),
    };
    log(`package ${format} initrd  CACHED`);
    return { image, packagingCached: true };
  }
  const started = Date.now();
  const common = { epoch, name, refName, run, blobs: cache.blobs, ...(runtime.kernelLayer ? { kernelLayer: runtime.kernelLayer } : {}) };
  const image = prebuiltInitrd ? await packagePrebuiltInitrd(prebuiltInitrd, common) : await packageImage({
    rootfsDir: rt.finalRoot,
    format,
    epoch,
    name,
    refName,
    run,
    blobs: cache.blobs,
    ...(runtime.kernelLayer ? { kernelLayer: runtime.kernelLayer } : {}),
    warn: (m) => log(`warning: ${m}`),
  });
  await cache.putImage(pkgKey, {
    manifest: image.manifest.digest.text,
    config: image.config.digest.text,
    layers: image.layers.map((l) => l.digest.text),
    initrd: image.initrd.digest.text,
  });
  log(`package ${format} initrd (${image.initrd.size} bytes) in ${Date.now() - started} ms`);
  return { image, packagingCached: false };
}

/** 5. Output: a layout directory, an `.oci.tar`, or a push (answered with what was pushed). */
async function writeOutput(ctx: BuildContext, target: OutputTarget, image: PackagedImage, refName: string): Promise<ProjectBuildResult['pushed']> {
  const blobs: ImageBlobs = { manifest: image.manifest, manifestMediaType: image.manifestMediaType, blobs: [image.config, ...image.layers] };
  if (target.kind === 'layout') {
    await writeLayout(target.dir, blobs, refName);
    return undefined;
  }
  if (target.kind === 'archive') {
    await writeLayoutArchive(target.file, blobs, refName);
    return undefined;
  }
  let ref: ImageReference;
  if (explicitDomain(target.ref)) ref = parseReference(target.ref);
  else {
    if (!ctx.central) throw new Error(`--output ${target.ref} names no registry: give --registry or a full reference (host:port/name:tag)`);
    ref = parseUnikraftReference(target.ref, ctx.central);
  }
  const started = Date.now();
  const pushed = await pushToRegistry(ctx.clientFor(ref.domain), ref.path, ref.tag ?? 'latest', blobs);
  const bytes = blobs.blobs.reduce((n, b) => n + b.size, 0) + image.manifest.size;
  const uploaded = pushed.blobs.filter((b) => b.action === 'uploaded').reduce((n, b) => n + b.size, 0);
  return { ref: `${formatReference({ ...ref, digest: undefined })}@${pushed.digest.text}`, bytes, uploaded, ms: Date.now() - started };
}

/** Copies `upper`'s tree over `lower` (files replace, directories merge), preserving everything. */
async function overlayTree(upper: string, lower: string): Promise<void> {
  await new Promise<void>((res, rej) => {
    const child = spawn('cp', ['-a', '--reflink=auto', `${upper}/.`, `${lower}/`], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', rej);
    child.on('close', (code) => (code === 0 ? res() : rej(new Error(`laying the app rootfs over the runtime's failed: ${err.trim()}`))));
  });
}

/**
 * Digest of a directory tree for the cache key of a directory rootfs: every
 * entry's relative path, mode, owner, mtime (seconds: it reaches the initrd),
 * symlink target and file contents, walked in bytewise name order.
 */
async function digestTree(root: string): Promise<string> {
  const hash = createHash('sha256');
  const visit = async (host: string, rel: string): Promise<void> => {
    const st = await lstat(host);
    hash.update(`${rel}\0${st.mode}\0${st.uid}:${st.gid}\0${Math.floor(st.mtimeMs / 1000)}\0`);
    if (st.isDirectory()) {
      const names = (await readdir(host)).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
      for (const name of names) await visit(join(host, name), `${rel}/${name}`);
    } else if (st.isSymbolicLink()) {
      hash.update(`L${await readlink(host)}\0`);
    } else if (st.isFile()) {
      hash.update(`F${st.size}\0`);
      for await (const chunk of createReadStream(host)) hash.update(chunk as Buffer);
    }
  };
  await visit(root, '.');
  return `sha256:${hash.digest('hex')}`;
}
