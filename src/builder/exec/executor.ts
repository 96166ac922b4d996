/**
 * The build executor: walks a parsed Dockerfile's stages (only those the target
 * needs), runs each instruction against the stage's root filesystem and config,
 * and keeps a cache state per step (see src/builder/cache).
 *
 * Invariants:
 * - Every state (after FROM and after each instruction) has a key that covers
 *   everything that can change its result, and names a snapshot holding its
 *   files; a step whose key is cached is not executed ("CACHED").
 * - A stage's work directory is materialised from the last cached snapshot only
 *   when a step actually has to run, so an unchanged rebuild copies nothing.
 * - Files are only ever written through src/builder/exec/copy.ts and archive.ts
 *   (confined to the stage root); RUN goes through run.ts.
 */
import { mkdir, rm, mkdtemp, writeFile, chmod, lchown, lstat } from 'node:fs/promises';
import { randomUUID } from 'node:crypto';
import { join, posix } from 'node:path';
import { BuildCache, hashOf, stepKey } from '../cache/cache.js';
import { copyTree } from '../cache/copytree.js';
import { removeTree } from '../../util/index.js';
import { DockerfileError, parseDockerfile, type Instruction, type ParsedDockerfile } from '../dockerfile/parser.js';
import { planBuild, resolveStages, type BuildPlan, type CopyStep, type ImageConfig, type ResolvedStage, type RunStep, type StagePlan, type Step } from '../dockerfile/plan.js';
import { copyDirMeta, copyPath, digestFiles, digestOperations, digestSources, mkdirInRoot, resolveSource, type Owner } from './copy.js';
import { detectArchive, extractArchive, type ArchiveKind, type ArchiveLimits } from './archive.js';
import {
  cleanSourcePath,
  ContextError,
  hasWildcard,
  loadDockerignore,
  NO_FILTER,
  resolveCopySources,
  resolveInRoot as ctxResolveInRoot,
  type ContextFilter,
  type CopyOperation,
} from '../context.js';
import { runStep } from '../../sandbox/index.js';
import { resolveOwner } from './users.js';
import { insideRoot, resolveInRoot } from './inroot.js';
import { downloadUrl, type UrlPolicy } from './download.js';

export interface StageConfig {
  env: string[];
  cmd?: string[];
  entrypoint?: string[];
  workingDir: string;
  user: string;
  labels: Record<string, string>;
  shell: string[];
  exposedPorts?: string[];
  stopSignal?: string;
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

export function emptyConfig(): StageConfig {
  return { env: [], workingDir: '/', user: '', labels: {}, shell: [...DEFAULT_SHELL] };
}

/** A base image made ready for FROM / COPY --from by whoever can fetch it (registry client, layout dir). */
export interface BaseImage {
  /** Stable identity of the content (e.g. the manifest digest). */
  key: string;
  config: Partial<StageConfig>;
  /** The image's OCI `config` object (Env, WorkingDir, …) for the plan's expansion. */
  imageConfig?: ImageConfig;
  /** Writes the image's flattened rootfs into the (empty, existing) directory. */
  materialize(dir: string): Promise<void>;
}

export type ImageResolver = (ref: string) => Promise<BaseImage>;

export interface BuildOptions {
  contextDir: string;
  /** Dockerfile text, or an already parsed one. */
  dockerfile: string | ParsedDockerfile;
  dockerfileName?: string;
  /** Where the Dockerfile is, for `<Dockerfile>.dockerignore` beside it. */
  dockerfilePath?: string;
  buildArgs?: Record<string, string>;
  /** Named contexts: `name=path` stands for an image or stage in FROM / COPY --from. */
  buildContexts?: Record<string, string>;
  target?: string;
  cache: BuildCache;
  noCache?: boolean;
  resolveImage?: ImageResolver;
  urlPolicy?: UrlPolicy;
  archiveLimits?: Partial<ArchiveLimits>;
  runTimeoutMs?: number;
  log?: (line: string) => void;
  /** Output of RUN steps. */
  output?: (chunk: Buffer) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  /** The final stage's files (a cache snapshot: read, do not modify). */
  rootfs: string;
  config: StageConfig;
  key: string;
  stepsRun: number;
  stepsCached: number;
  runStepsExecuted: number;
  warnings: string[];
}

export class BuildStepError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly instruction: string,
    message: string,
    readonly exitCode?: number,
  ) {
    super(`${file}:${line}: ${instruction}: ${message}`);
    this.name = 'BuildStepError';
  }
}

interface State {
  key: string;
  fsKey: string;
}

/** The config a Dockerfile leaves, in the executor's terms (from the plan's OCI-shaped one). */
export function stageConfigOf(c: ImageConfig): StageConfig {
  const out: StageConfig = { env: c.Env ?? [], workingDir: c.WorkingDir || '/', user: c.User ?? '', labels: c.Labels ?? {}, shell: c.Shell ?? [...DEFAULT_SHELL] };
  if (c.Cmd) out.cmd = c.Cmd;
  if (c.Entrypoint) out.entrypoint = c.Entrypoint;
  if (c.ExposedPorts) out.exposedPorts = Object.keys(c.ExposedPorts);
  if (c.StopSignal) out.stopSignal = c.StopSignal;
  return out;
}

function shortText(ins: Instruction): string {
  const flags = ins.flags.map((f) => (f.value === null ? `--${f.name}` : `--${f.name}=${f.value}`));
  const text = [ins.keyword, ...flags, ins.args.replace(/\s+/g, ' ')].join(' ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function stepLabel(step: Step, ins: Instruction | undefined): string {
  if (ins) return shortText(ins);
  return step.kind.toUpperCase();
}

/** A step as it takes part in its cache key: everything but its line number. */
function stepText(step: Step): string {
  const { line: _line, ...rest } = step;
  return JSON.stringify(rest);
}

export class Builder {
  private readonly file: string;
  private readonly df: ParsedDockerfile;
  private readonly built = new Map<number, State>();
  private readonly imageStates = new Map<string, State>();
  private readonly images = new Map<string, BaseImage>();
  private readonly log: (line: string) => void;
  private readonly warnings: string[] = [];
  private filter: ContextFilter = NO_FILTER;
  private workRoot = '';
  private plan!: BuildPlan;
  private resolved = new Map<number, ResolvedStage>();
  stepsRun = 0;
  stepsCached = 0;
  runStepsExecuted = 0;

  constructor(private readonly opts: BuildOptions) {
    this.file = opts.dockerfileName ?? 'Dockerfile';
    this.df = typeof opts.dockerfile === 'string' ? parseDockerfile(opts.dockerfile, this.file) : opts.dockerfile;
    this.log = opts.log ?? (() => undefined);
  }

  private fail(line: number, label: string, message: string, exitCode?: number): never {
    throw new BuildStepError(this.file, line, label, message, exitCode);
  }

  async build(): Promise<BuildResult> {
    try {
      this.plan = planBuild(this.df, { ...(this.opts.target ? { target: this.opts.target } : {}), ...(this.opts.buildArgs ? { buildArgs: this.opts.buildArgs } : {}) });
    } catch (err) {
      if (err instanceof DockerfileError) throw new BuildStepError(this.file, err.line, err.instruction ?? 'Dockerfile', err.reason);
      throw err;
    }
    for (const w of this.plan.warnings) this.warnings.push(w);
    if (this.plan.unusedBuildArgs.length > 0) this.warnings.push(`build args not declared by any ARG: ${this.plan.unusedBuildArgs.join(', ')}`);
    await mkdir(this.opts.cache.root, { recursive: true });
    this.workRoot = await mkdtemp(join(this.opts.cache.root, 'work-'));
    try {
      this.filter = await loadDockerignore(this.opts.contextDir, this.opts.dockerfilePath);
      // Base images first: their configs (Env above all) take part in the plan's expansion.
      for (const ref of this.plan.imageRefs) {
        if (this.opts.buildContexts?.[ref] !== undefined) continue;
        await this.fetchImage(ref);
      }
      const stages = resolveStages(this.plan, (ref) => {
        if (this.opts.buildContexts?.[ref] !== undefined) return {};
        return (this.images.get(ref) as BaseImage).imageConfig ?? {};
      });
      for (const st of stages) this.resolved.set(st.index, st);
      for (const st of stages) for (const w of st.warnings) this.warnings.push(w);
      const target = this.resolved.get(this.plan.target) as ResolvedStage;
      const state = await this.buildStage(this.plan.target);
      return {
        rootfs: this.opts.cache.rootfsOf(state.fsKey),
        config: stageConfigOf(target.config),
        key: hashOf('ukc-stage-v1', state.key, JSON.stringify(target.config)),
        stepsRun: this.stepsRun,
        stepsCached: this.stepsCached,
        runStepsExecuted: this.runStepsExecuted,
        warnings: this.warnings,
      };
    } finally {
      await removeTree(this.workRoot);
    }
  }

  private async fetchImage(ref: string): Promise<BaseImage> {
    const have = this.images.get(ref);
    if (have) return have;
    if (!this.opts.resolveImage) throw new BuildStepError(this.file, 1, `FROM ${ref}`, `cannot fetch image "${ref}": no registry configured for this build`);
    try {
      const image = await this.opts.resolveImage(ref);
      this.images.set(ref, image);
      return image;
    } catch (err) {
      throw new BuildStepError(this.file, 1, `FROM ${ref}`, `cannot fetch image "${ref}": ${(err as Error).message}`);
    }
  }

  private stageLabel(index: number): string {
    return `[stage ${this.plan.stages[index]?.name ?? index}]`;
  }

  private async buildStage(index: number): Promise<State> {
    const done = this.built.get(index);
    if (done) return done;
    const plan = this.plan.stages[index] as StagePlan;
    const resolved = this.resolved.get(index) as ResolvedStage;
    const base = plan.base;
    this.log(`${this.stageLabel(index)} FROM ${base.kind === 'scratch' ? 'scratch' : base.kind === 'stage' ? `stage ${this.plan.stages[base.index]?.name ?? base.index}` : base.ref}`);
    let state: State;
    if (base.kind === 'scratch') state = await this.scratchState();
    else if (base.kind === 'stage') state = await this.buildStage(base.index);
    else state = await this.refState(base.ref);
    let work: { dir: string; fsKey: string } | undefined;
    const ensureWork = async (): Promise<string> => {
      if (work && work.fsKey === state.fsKey) return work.dir;
      const dir = join(this.workRoot, `stage-${index}`);
      await rm(dir, { recursive: true, force: true });
      await copyTree(this.opts.cache.rootfsOf(state.fsKey), dir);
      work = { dir, fsKey: state.fsKey };
      return dir;
    };
    for (const step of resolved.steps) {
      const ins = plan.instructions.find((i) => i.line === step.line);
      const label = `${this.stageLabel(index)} ${stepLabel(step, ins)}`;
      let inputs: string | undefined;
      let copy: ((dir: string) => Promise<void>) | undefined;
      if (step.kind === 'copy') {
        const planned = await this.planCopy(index, step, label);
        inputs = planned.inputs;
        copy = planned.run;
      }
      const key = stepKey({ parent: state.key, text: stepText(step), ...(inputs ? { inputs } : {}) });
      if (!this.opts.noCache) {
        const hit = await this.opts.cache.getState<Record<string, never>>(key);
        if (hit) {
          this.stepsCached++;
          this.log(`${label}  CACHED`);
          state = { key, fsKey: hit.fsKey };
          continue;
        }
      }
      const started = Date.now();
      this.log(label);
      const dir = await ensureWork();
      try {
        if (step.kind === 'run') await this.runInstruction(step, dir, label);
        else if (step.kind === 'workdir') await mkdirInRoot(dir, step.path);
        else await (copy as (dir: string) => Promise<void>)(dir);
      } catch (err) {
        if (err instanceof BuildStepError) throw err;
        this.fail(step.line, label.replace(/^\[stage [^\]]*\] /, ''), (err as Error).message);
      }
      const stored = await this.opts.cache.putState(key, {}, { rootfs: dir }, { replace: this.opts.noCache === true });
      state = { key, fsKey: stored.fsKey };
      work = { dir, fsKey: state.fsKey };
      this.stepsRun++;
      this.log(`${label}  done in ${Date.now() - started} ms`);
    }
    this.built.set(index, state);
    return state;
  }

  private async scratchState(): Promise<State> {
    const cache = this.opts.cache;
    const key = hashOf('ukc-scratch-v1');
    const hit = await cache.getState(key);
    if (hit) return { key, fsKey: hit.fsKey };
    const empty = join(this.workRoot, 'scratch');
    await mkdir(empty, { recursive: true });
    const st = await cache.putState(key, {}, { rootfs: empty });
    return { key, fsKey: st.fsKey };
  }

  /** The state of an image reference: a named build context, or a fetched image. */
  private async refState(ref: string): Promise<State> {
    const memo = this.imageStates.get(ref);
    if (memo) return memo;
    const cache = this.opts.cache;
    let state: State;
    const ctx = this.opts.buildContexts?.[ref];
    if (ctx !== undefined) {
      const src = await resolveSource(ctx, '/');
      const key = hashOf('ukc-context-v1', await digestSources([src]));
      const st = (await cache.getState(key)) ?? (await cache.putState(key, {}, { rootfs: ctx }));
      state = { key, fsKey: st.fsKey };
    } else {
      const image = await this.fetchImage(ref);
      const key = hashOf('ukc-image-v1', image.key);
      const hit = await cache.getState(key);
      if (hit) state = { key, fsKey: hit.fsKey };
      else {
        const dir = join(this.workRoot, `image-${hashOf(ref).slice(0, 16)}`);
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        try {
          await image.materialize(dir);
        } catch (err) {
          throw new BuildStepError(this.file, 1, `FROM ${ref}`, `cannot unpack image "${ref}": ${(err as Error).message}`);
        }
        const st = await cache.putState(key, {}, { rootfs: dir });
        await rm(dir, { recursive: true, force: true });
        state = { key, fsKey: st.fsKey };
      }
    }
    this.imageStates.set(ref, state);
    return state;
  }

  /** The root a COPY reads from and the key naming its content (for other stages and images). */
  private async originRoot(step: CopyStep): Promise<{ root: string; key?: string }> {
    if (step.from.kind === 'context') return { root: this.opts.contextDir };
    const st = step.from.kind === 'stage' ? await this.buildStage(step.from.index) : await this.refState(step.from.ref);
    return { root: this.opts.cache.rootfsOf(st.fsKey), key: st.key };
  }

  private async planCopy(_index: number, step: CopyStep, label: string): Promise<{ inputs: string; run: (dir: string) => Promise<void> }> {
    const isAdd = step.keyword === 'ADD';
    const short = label.replace(/^\[stage [^\]]*\] /, '');
    const origin = await this.originRoot(step);
    const root = origin.root;
    const filter = step.from.kind === 'context' ? this.filter : NO_FILTER;
    const heredocs = step.sources.filter((s): s is { kind: 'heredoc'; name: string; content: string } => s.kind === 'heredoc');
    const paths = step.sources.filter((s): s is { kind: 'path'; path: string } => s.kind === 'path').map((s) => s.path);
    const dest = step.dest;
    const intoDir = step.destIsDir || step.sources.length > 1;

    // ADD: local archives named as sources are extracted, not copied.
    const archives: Array<{ hostPath: string; kind: ArchiveKind }> = [];
    const copySources: string[] = [];
    for (const src of paths) {
      if (isAdd && !/^https?:\/\//i.test(src) && !hasWildcard(src)) {
        let real: string | null = null;
        try {
          real = await ctxResolveInRoot(root, cleanSourcePath(src, 'ADD'));
        } catch (err) {
          if (err instanceof ContextError) this.fail(step.line, short, err.message);
          throw err;
        }
        if (real !== null) {
          const hostPath = join(root, real);
          const st = await lstat(hostPath);
          const kind = st.isFile() ? await detectArchive(hostPath) : undefined;
          if (kind) {
            archives.push({ hostPath, kind });
            continue;
          }
        }
      }
      copySources.push(src);
    }
    const plan = async (): Promise<CopyOperation[]> => {
      if (copySources.length === 0) return [];
      try {
        return await resolveCopySources({
          root,
          filter,
          sources: copySources,
          dest,
          destIsDir: intoDir,
          allowUrls: isAdd,
          excludes: step.excludes,
          instruction: step.keyword,
        });
      } catch (err) {
        if (err instanceof ContextError) this.fail(step.line, short, err.message);
        throw err;
      }
    };
    // Context sources are planned (and hashed) now; a stage's or image's files are named by its key.
    const contextOps = origin.key ? undefined : await plan();
    const inputs = hashOf(
      origin.key ? `from:${origin.key}` : await digestOperations(contextOps as CopyOperation[]),
      await digestFiles(archives.map((a) => a.hostPath)),
    );
    const run = async (dir: string): Promise<void> => {
      let owner: Owner = { uid: 0, gid: 0 };
      if (step.chown !== null) owner = await resolveOwner(dir, step.chown);
      const warn = (m: string): void => {
        this.warnings.push(m);
        this.log(`warning: ${m}`);
      };
      const copyOpts = { owner, ...(step.chmod !== null ? { chmod: step.chmod } : {}), warn };
      for (const h of heredocs) {
        const target = intoDir ? posix.join(dest, h.name) : dest;
        await mkdirInRoot(dir, posix.dirname(target));
        const host = await resolveInRoot(dir, target, { followFinal: false });
        await rm(host, { force: true });
        await writeFile(host, h.content);
        await lchown(host, owner.uid, owner.gid);
        await chmod(host, step.chmod ?? 0o644);
      }
      for (const a of archives) {
        await extractArchive(a.hostPath, a.kind, dir, dest, { ...(this.opts.archiveLimits ? { limits: this.opts.archiveLimits } : {}), onWarning: warn });
      }
      const ops = contextOps ?? (await plan());
      const dirMeta: Array<{ host: string; source: string }> = [];
      for (const op of ops) {
        if (op.kind === 'directory') {
          const host = await mkdirInRoot(dir, op.dest);
          if (op.source) dirMeta.push({ host, source: op.source });
        } else if (op.kind === 'file' || op.kind === 'symlink') {
          let target = op.dest;
          if (op.kind === 'file' && op.placeIntoExistingDir) {
            const existing = await lstat(await resolveInRoot(dir, op.dest)).catch(() => undefined);
            if (existing?.isDirectory()) target = posix.join(op.dest, op.placeIntoExistingDir);
          }
          await mkdirInRoot(dir, posix.dirname(target));
          await copyPath(op.source, dir, target, copyOpts);
        } else {
          await mkdirInRoot(dir, posix.dirname(op.dest));
          const host = await resolveInRoot(dir, op.dest, { followFinal: false });
          await rm(host, { force: true });
          await downloadUrl(op.url, host, this.opts.urlPolicy ?? {});
          await chmod(host, step.chmod ?? 0o600);
        }
      }
      // Directory modes, owners and times last, deepest first, so copying into them does not change them.
      for (const d of dirMeta.reverse()) await copyDirMeta(d.source, d.host, copyOpts);
    };
    return { inputs, run };
  }

  private async runInstruction(step: RunStep, dir: string, label: string): Promise<void> {
    const short = label.replace(/^\[stage [^\]]*\] /, '');
    if (step.mounts.length > 0) this.fail(step.line, short, 'RUN --mount is not supported by this builder yet');
    const cwd = step.workdir || '/';
    const cwdHost = await resolveInRoot(dir, cwd);
    const cwdInside = insideRoot(dir, cwdHost);
    if (cwdInside === '/proc' || cwdInside.startsWith('/proc/') || cwdInside === '/dev' || cwdInside.startsWith('/dev/')) {
      this.fail(step.line, short, `working directory ${cwd} resolves into ${cwdInside}, which RUN refuses (it is a kernel or device mount at run time)`);
    }
    await mkdirInRoot(dir, cwdInside);
    let owner: Owner = { uid: 0, gid: 0 };
    if (step.user) {
      try {
        owner = await resolveOwner(dir, step.user);
      } catch (err) {
        this.fail(step.line, short, (err as Error).message);
      }
    }
    const env = [...step.env];
    if (!env.some((e) => e.startsWith('PATH='))) env.push('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    let argv: string[];
    let script: string | undefined;
    if (step.exec.kind === 'argv') argv = step.exec.argv;
    else {
      // A heredoc with a #! line: written to a file and executed directly (BuildKit's behaviour).
      script = `/.ukc-run-${randomUUID()}`;
      const host = join(dir, script);
      await writeFile(host, step.exec.content, { mode: 0o755 });
      argv = [script];
    }
    try {
      const result = await runStep({
        rootfs: dir,
        argv,
        env,
        cwd: cwdInside,
        uid: owner.uid,
        gid: owner.gid,
        ...(this.opts.runTimeoutMs ? { timeoutMs: this.opts.runTimeoutMs } : {}),
        ...(this.opts.output ? { onOutput: (_stream: 'stdout' | 'stderr', chunk: Buffer) => this.opts.output?.(chunk) } : {}),
      });
      this.runStepsExecuted++;
      const code = result.exitCode ?? (result.signal ? 128 : 1);
      if (result.commandNotFound || code === 127) {
        this.fail(step.line, short, `command not found (exit code 127): ${result.commandNotFound ? (argv[0] ?? '') : (argv[argv.length - 1] ?? '')}`, 127);
      }
      if (result.failure) this.fail(step.line, short, result.failure, code);
    } finally {
      if (script) await rm(join(dir, script), { force: true });
    }
  }
}

export async function buildDockerfile(opts: BuildOptions): Promise<BuildResult> {
  return new Builder(opts).build();
}
