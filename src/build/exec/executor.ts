/**
 * The build executor: walks a parsed Dockerfile's stages (only those the target
 * needs), runs each instruction against the stage's root filesystem and config,
 * and keeps a cache state per step (see src/build/cache).
 *
 * Invariants:
 * - Every state (after FROM and after each instruction) has a key that covers
 *   everything that can change its result, and names a snapshot holding its
 *   files; a step whose key is cached is not executed ("CACHED").
 * - A stage's work directory is materialised from the last cached snapshot only
 *   when a step actually has to run, so an unchanged rebuild copies nothing.
 * - Files are only ever written through src/build/exec/copy.ts and archive.ts
 *   (confined to the stage root); RUN goes through run.ts.
 */
import { mkdir, rm, mkdtemp, writeFile, chmod, lstat } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { BuildCache, hashOf, stepKey } from '../cache/cache.js';
import { copyTree } from '../cache/copytree.js';
import { parseDockerfile, type Instruction, type ParsedDockerfile } from '../dockerfile/parser.js';
import { expandWord, splitWords, type VariableLookup } from '../dockerfile/expand.js';
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
import { runStep } from '../../sandbox/run-step.js';
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

interface Stage {
  index: number;
  name?: string;
  from: Instruction;
  instructions: Instruction[];
}

interface State {
  key: string;
  config: StageConfig;
  fsKey: string;
}

const FS_KEYWORDS = new Set(['RUN', 'COPY', 'ADD', 'WORKDIR']);

function shortText(ins: Instruction): string {
  const flags = ins.flags.map((f) => (f.value === null ? `--${f.name}` : `--${f.name}=${f.value}`));
  const text = [ins.keyword, ...flags, ins.args].join(' ');
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function envMap(list: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of list) {
    const eq = e.indexOf('=');
    m.set(eq < 0 ? e : e.slice(0, eq), eq < 0 ? '' : e.slice(eq + 1));
  }
  return m;
}

function setEnv(list: string[], key: string, value: string): string[] {
  const out = list.filter((e) => e !== key && !e.startsWith(`${key}=`));
  out.push(`${key}=${value}`);
  return out;
}

function flag(ins: Instruction, name: string): string | undefined {
  const f = ins.flags.find((x) => x.name === name);
  return f ? (f.value ?? '') : undefined;
}

export class Builder {
  private readonly file: string;
  private readonly df: ParsedDockerfile;
  private readonly stages: Stage[] = [];
  private readonly globalArgs = new Map<string, string | undefined>();
  private readonly built = new Map<number, State>();
  private readonly imageStates = new Map<string, State>();
  private readonly log: (line: string) => void;
  private readonly warnings: string[] = [];
  private filter: ContextFilter = NO_FILTER;
  private workRoot = '';
  stepsRun = 0;
  stepsCached = 0;
  runStepsExecuted = 0;

  constructor(private readonly opts: BuildOptions) {
    this.file = opts.dockerfileName ?? 'Dockerfile';
    this.df = typeof opts.dockerfile === 'string' ? parseDockerfile(opts.dockerfile, this.file) : opts.dockerfile;
    this.log = opts.log ?? (() => undefined);
    let current: Stage | undefined;
    for (const ins of this.df.instructions) {
      if (ins.keyword === 'FROM') {
        current = { index: this.stages.length, from: ins, instructions: [] };
        const words = splitWords(ins.args, this.df.directives.escape);
        if (words.length >= 3 && words[1]?.toLowerCase() === 'as') current.name = (words[2] as string).toLowerCase();
        this.stages.push(current);
      } else if (!current) {
        if (ins.keyword !== 'ARG') throw new BuildStepError(this.file, ins.line, ins.keyword, 'only ARG may come before the first FROM');
        for (const [k, v] of this.parseArgWords(ins, () => undefined)) {
          this.globalArgs.set(k, this.opts.buildArgs?.[k] ?? v);
        }
      } else {
        current.instructions.push(ins);
      }
    }
    if (this.stages.length === 0) throw new BuildStepError(this.file, 1, 'FROM', 'the Dockerfile has no FROM');
  }

  private fail(ins: Instruction, message: string, exitCode?: number): never {
    throw new BuildStepError(this.file, ins.line, shortText(ins), message, exitCode);
  }

  private parseArgWords(ins: Instruction, lookup: VariableLookup): Array<[string, string | undefined]> {
    const out: Array<[string, string | undefined]> = [];
    for (const word of splitWords(ins.args, this.df.directives.escape)) {
      const eq = word.indexOf('=');
      if (eq < 0) out.push([word, undefined]);
      else out.push([word.slice(0, eq), expandWord(word.slice(eq + 1), lookup, { escape: this.df.directives.escape })]);
    }
    return out;
  }

  private findStage(ref: string, before: number): Stage | undefined {
    const lower = ref.toLowerCase();
    const byName = this.stages.find((s) => s.name === lower && s.index < before);
    if (byName) return byName;
    if (/^\d+$/.test(ref)) {
      const idx = Number(ref);
      if (idx < before) return this.stages[idx];
    }
    return undefined;
  }

  async build(): Promise<BuildResult> {
    await mkdir(this.opts.cache.root, { recursive: true });
    this.workRoot = await mkdtemp(join(this.opts.cache.root, 'work-'));
    try {
      await this.loadIgnore();
      let target = this.stages[this.stages.length - 1] as Stage;
      if (this.opts.target) {
        const t = this.stages.find((s) => s.name === this.opts.target?.toLowerCase());
        if (!t) throw new Error(`target stage "${this.opts.target}" is not in the Dockerfile`);
        target = t;
      }
      const state = await this.buildStage(target);
      return {
        rootfs: this.opts.cache.rootfsOf(state.fsKey),
        config: state.config,
        key: state.key,
        stepsRun: this.stepsRun,
        stepsCached: this.stepsCached,
        runStepsExecuted: this.runStepsExecuted,
        warnings: this.warnings,
      };
    } finally {
      await rm(this.workRoot, { recursive: true, force: true });
    }
  }

  private async loadIgnore(): Promise<void> {
    this.filter = await loadDockerignore(this.opts.contextDir, this.opts.dockerfilePath);
  }

  private globalLookup(): VariableLookup {
    return (name) => this.globalArgs.get(name);
  }

  private async buildStage(stage: Stage): Promise<State> {
    const done = this.built.get(stage.index);
    if (done) return done;
    const fromWords = splitWords(stage.from.args, this.df.directives.escape);
    const baseRef = expandWord(fromWords[0] ?? '', this.globalLookup(), { escape: this.df.directives.escape });
    this.log(`[stage ${stage.name ?? stage.index}] FROM ${baseRef}`);
    let state = await this.baseState(baseRef, stage.index, stage.from);
    const args = new Map<string, string>();
    let work: { dir: string; fsKey: string } | undefined;
    const ensureWork = async (): Promise<string> => {
      if (work && work.fsKey === state.fsKey) return work.dir;
      const dir = join(this.workRoot, `stage-${stage.index}`);
      await rm(dir, { recursive: true, force: true });
      await copyTree(this.opts.cache.rootfsOf(state.fsKey), dir);
      work = { dir, fsKey: state.fsKey };
      return dir;
    };
    for (const ins of stage.instructions) {
      const lookup: VariableLookup = (name) => envMap(state.config.env).get(name) ?? args.get(name);
      const expand = (w: string): string => expandWord(w, lookup, { escape: this.df.directives.escape });
      if (ins.keyword === 'ARG') {
        for (const [k, v] of this.parseArgWords(ins, lookup)) {
          const value = this.opts.buildArgs?.[k] ?? v ?? this.globalArgs.get(k);
          if (value !== undefined) args.set(k, value);
        }
      }
      const argList = [...args].map(([k, v]) => `${k}=${v}`);
      let inputs: string | undefined;
      let prepared: (() => Promise<void>) | undefined;
      let text = `${ins.keyword} ${ins.flags.map((f) => `--${f.name}=${f.value ?? ''}`).join(' ')} ${ins.args}`;
      if (ins.keyword === 'COPY' || ins.keyword === 'ADD') {
        const plan = await this.planCopy(stage, ins, expand, state);
        inputs = plan.inputs;
        text = plan.text;
        prepared = async () => plan.run(await ensureWork());
      } else if (ins.keyword !== 'RUN') {
        // Expansion applies to the words of these instructions; RUN is left to the shell.
        text = `${ins.keyword} ${JSON.stringify(ins.flags)} ${ins.heredocs.length ? JSON.stringify(ins.heredocs) : ''}${ins.args}`;
      } else {
        text = `${text} ${JSON.stringify(ins.heredocs)}`;
      }
      const key = stepKey({ parent: state.key, text, ...(inputs ? { inputs } : {}), args: ins.keyword === 'RUN' ? argList : [] });
      const label = `[stage ${stage.name ?? stage.index}] ${shortText(ins)}`;
      if (!this.opts.noCache) {
        const hit = await this.opts.cache.getState<StageConfig>(key);
        if (hit) {
          this.stepsCached++;
          this.log(`${label}  CACHED`);
          state = hit;
          continue;
        }
      }
      const started = Date.now();
      this.log(label);
      const config = structuredClone(state.config);
      if (FS_KEYWORDS.has(ins.keyword)) {
        const dir = await ensureWork();
        if (ins.keyword === 'RUN') await this.runInstruction(ins, dir, config, args);
        else if (ins.keyword === 'WORKDIR') {
          const wd = posix.resolve(config.workingDir || '/', expand(ins.args));
          try {
            await mkdirInRoot(dir, wd);
          } catch (err) {
            this.fail(ins, (err as Error).message);
          }
          config.workingDir = wd;
        } else if (prepared) {
          try {
            await prepared();
          } catch (err) {
            if (err instanceof BuildStepError) throw err;
            this.fail(ins, (err as Error).message);
          }
        }
        state = await this.opts.cache.putState(key, config, { rootfs: dir }, { replace: this.opts.noCache === true });
        work = { dir, fsKey: state.fsKey };
      } else {
        this.applyConfig(ins, config, expand);
        state = await this.opts.cache.putState(key, config, { fsKey: state.fsKey }, { replace: this.opts.noCache === true });
      }
      this.stepsRun++;
      this.log(`${label}  done in ${Date.now() - started} ms`);
    }
    this.built.set(stage.index, state);
    return state;
  }

  private applyConfig(ins: Instruction, config: StageConfig, expand: (w: string) => string): void {
    const esc = this.df.directives.escape;
    const kvWords = (): Array<[string, string]> => {
      const words = splitWords(ins.args, esc);
      if (words.length >= 1 && !(words[0] as string).includes('=')) {
        // Legacy `ENV KEY value with spaces`.
        return [[words[0] as string, expand(ins.args.slice(ins.args.indexOf(words[0] as string) + (words[0] as string).length).trim())]];
      }
      return words.map((w) => {
        const eq = w.indexOf('=');
        return [expand(w.slice(0, eq)), expand(w.slice(eq + 1))];
      });
    };
    const cmdForm = (): string[] => ins.json ?? [...config.shell, ins.args];
    switch (ins.keyword) {
      case 'ENV':
        for (const [k, v] of kvWords()) config.env = setEnv(config.env, k, v);
        break;
      case 'LABEL':
        for (const [k, v] of kvWords()) config.labels[k] = v;
        break;
      case 'USER':
        config.user = expand(ins.args);
        break;
      case 'CMD':
        config.cmd = cmdForm();
        if (!ins.json) this.warnings.push(`${this.file}:${ins.line}: CMD in shell form needs /bin/sh in the image`);
        break;
      case 'ENTRYPOINT':
        config.entrypoint = cmdForm();
        delete config.cmd;
        break;
      case 'SHELL':
        if (!ins.json) this.fail(ins, 'SHELL needs the JSON (exec) form');
        config.shell = ins.json;
        break;
      case 'EXPOSE':
        config.exposedPorts = [...(config.exposedPorts ?? []), ...splitWords(ins.args, esc).map(expand)];
        break;
      case 'STOPSIGNAL':
        config.stopSignal = expand(ins.args);
        break;
      default:
        // ARG, VOLUME, HEALTHCHECK, ONBUILD, MAINTAINER: no effect on the Unikraft image config.
        break;
    }
  }

  private async baseState(ref: string, before: number, ins: Instruction): Promise<State> {
    const cache = this.opts.cache;
    if (ref === 'scratch') {
      const key = hashOf('ukc-scratch-v1');
      const hit = await cache.getState<StageConfig>(key);
      if (hit) return hit;
      const empty = join(this.workRoot, 'scratch');
      await mkdir(empty, { recursive: true });
      return cache.putState(key, emptyConfig(), { rootfs: empty });
    }
    const ctx = this.opts.buildContexts?.[ref];
    if (ctx !== undefined) return this.contextState(ref, ctx);
    const stage = this.findStage(ref, before);
    if (stage) return this.buildStage(stage);
    return this.imageState(ref, ins);
  }

  private async contextState(name: string, dir: string): Promise<State> {
    const memo = this.imageStates.get(`context:${name}`);
    if (memo) return memo;
    const src = await resolveSource(dir, '/');
    const key = hashOf('ukc-context-v1', await digestSources([src]));
    const state = (await this.opts.cache.getState<StageConfig>(key)) ?? (await this.opts.cache.putState(key, emptyConfig(), { rootfs: dir }));
    this.imageStates.set(`context:${name}`, state);
    return state;
  }

  private async imageState(ref: string, ins: Instruction): Promise<State> {
    const memo = this.imageStates.get(ref);
    if (memo) return memo;
    if (!this.opts.resolveImage) this.fail(ins, `cannot fetch image "${ref}": no registry configured for this build`);
    let image: BaseImage;
    try {
      image = await this.opts.resolveImage(ref);
    } catch (err) {
      this.fail(ins, `cannot fetch image "${ref}": ${(err as Error).message}`);
    }
    const key = hashOf('ukc-image-v1', image.key);
    let state = await this.opts.cache.getState<StageConfig>(key);
    if (!state) {
      const dir = join(this.workRoot, `image-${hashOf(ref).slice(0, 16)}`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { recursive: true });
      await image.materialize(dir);
      state = await this.opts.cache.putState(key, { ...emptyConfig(), ...image.config }, { rootfs: dir });
      await rm(dir, { recursive: true, force: true });
    }
    this.imageStates.set(ref, state);
    return state;
  }

  /** The root that `--from=X` names: a stage, a named context, or an image. */
  private async fromRoot(stage: Stage, ins: Instruction, from: string): Promise<{ root: string; key: string }> {
    const ctx = this.opts.buildContexts?.[from];
    if (ctx !== undefined) return { root: ctx, key: (await this.contextState(from, ctx)).key };
    const src = this.findStage(from, stage.index);
    if (src) {
      const st = await this.buildStage(src);
      return { root: this.opts.cache.rootfsOf(st.fsKey), key: st.key };
    }
    if (/^\d+$/.test(from)) this.fail(ins, `--from=${from}: no earlier stage has that index`);
    const st = await this.imageState(from, ins);
    return { root: this.opts.cache.rootfsOf(st.fsKey), key: st.key };
  }

  private async planCopy(
    stage: Stage,
    ins: Instruction,
    expand: (w: string) => string,
    state: State,
  ): Promise<{ inputs: string; text: string; run: (dir: string) => Promise<void> }> {
    const isAdd = ins.keyword === 'ADD';
    const words = (ins.json ?? splitWords(ins.args, this.df.directives.escape)).map((w) => (ins.json ? w : expand(w)));
    const heredocs = ins.heredocs;
    const fromFlag = flag(ins, 'from');
    const chownSpec = flag(ins, 'chown');
    const chmodSpec = flag(ins, 'chmod');
    const excludes = ins.flags.filter((f) => f.name === 'exclude' && f.value !== null).map((f) => expand(f.value as string));
    if (words.length < 2 && heredocs.length === 0) this.fail(ins, 'needs at least one source and a destination');
    const destWord = words[words.length - 1] as string;
    const rawSources = heredocs.length > 0 ? [] : words.slice(0, -1);
    let chmodMode: number | undefined;
    if (chmodSpec !== undefined) {
      if (!/^[0-7]{3,4}$/.test(chmodSpec)) this.fail(ins, `--chmod=${chmodSpec}: want an octal mode`);
      chmodMode = parseInt(chmodSpec, 8);
    }
    const from = fromFlag !== undefined ? await this.fromRoot(stage, ins, expand(fromFlag)) : undefined;
    const root = from?.root ?? this.opts.contextDir;
    const filter = from ? NO_FILTER : this.filter;
    const dest = posix.resolve(state.config.workingDir || '/', destWord);
    const destIsDir = destWord.endsWith('/') || destWord === '.' || /\/\.$/.test(destWord);

    // ADD: local archives named as sources are extracted, not copied.
    const archives: Array<{ hostPath: string; kind: ArchiveKind }> = [];
    const copySources: string[] = [];
    for (const src of rawSources) {
      if (isAdd && !/^https?:\/\//i.test(src) && !hasWildcard(src)) {
        const real = await ctxResolveInRoot(root, cleanSourcePath(src, 'ADD')).catch(() => null);
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
          destIsDir: destIsDir || rawSources.length + heredocs.length > 1,
          allowUrls: isAdd,
          excludes,
          instruction: ins.keyword,
        });
      } catch (err) {
        if (err instanceof ContextError) this.fail(ins, err.message);
        throw err;
      }
    };
    // Context sources are planned (and hashed) now; another stage's files are named by that stage's key.
    const contextOps = from ? undefined : await plan();
    const inputs = hashOf(
      from ? `from:${from.key}` : await digestOperations(contextOps as CopyOperation[]),
      await digestFiles(archives.map((a) => a.hostPath)),
      JSON.stringify(heredocs),
      JSON.stringify(excludes),
    );
    const text = `${ins.keyword} ${JSON.stringify(ins.flags)} ${JSON.stringify(words)} -> ${dest}`;
    const run = async (dir: string): Promise<void> => {
      const owner: Owner = chownSpec !== undefined ? await resolveOwner(dir, expand(chownSpec)) : { uid: 0, gid: 0 };
      const warn = (m: string): void => {
        this.warnings.push(m);
        this.log(`warning: ${m}`);
      };
      const copyOpts = { owner, ...(chmodMode !== undefined ? { chmod: chmodMode } : {}), warn };
      for (const h of heredocs) {
        const target = destIsDir || heredocs.length > 1 ? posix.join(dest, h.name) : dest;
        await mkdirInRoot(dir, posix.dirname(target));
        const host = await resolveInRoot(dir, target, { followFinal: false });
        await rm(host, { force: true });
        await writeFile(host, h.expand ? expandWord(h.content, (n) => envMap(state.config.env).get(n), { raw: true }) : h.content);
        await chmod(host, chmodMode ?? 0o644);
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
          await chmod(host, chmodMode ?? 0o600);
        }
      }
      // Directory modes, owners and times last, deepest first, so copying into them does not change them.
      for (const d of dirMeta.reverse()) await copyDirMeta(d.source, d.host, copyOpts);
    };
    return { inputs, text, run };
  }

  private async runInstruction(ins: Instruction, dir: string, config: StageConfig, args: Map<string, string>): Promise<void> {
    let argv: string[];
    if (ins.heredocs.length > 0) argv = [...config.shell, (ins.heredocs[0] as { content: string }).content];
    else argv = ins.json ?? [...config.shell, ins.args];
    const env = [...config.env];
    const envKeys = new Set(env.map((e) => e.split('=')[0]));
    for (const [k, v] of args) if (!envKeys.has(k)) env.push(`${k}=${v}`);
    if (!envKeys.has('PATH')) env.push('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    const cwd = config.workingDir || '/';
    const cwdHost = await resolveInRoot(dir, cwd);
    const cwdInside = insideRoot(dir, cwdHost);
    if (cwdInside === '/proc' || cwdInside.startsWith('/proc/') || cwdInside === '/dev' || cwdInside.startsWith('/dev/')) {
      this.fail(ins, `working directory ${cwd} resolves into ${cwdInside}, which RUN refuses (it is a kernel or device mount at run time)`);
    }
    let owner: Owner = { uid: 0, gid: 0 };
    if (config.user) {
      try {
        owner = await resolveOwner(dir, config.user);
      } catch (err) {
        this.fail(ins, (err as Error).message);
      }
    }
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
      this.fail(ins, `command not found (exit code 127): ${result.commandNotFound ? (argv[0] ?? '') : (argv[argv.length - 1] ?? '')}`, 127);
    }
    if (result.failure) this.fail(ins, result.failure, code);
  }
}

export async function buildDockerfile(opts: BuildOptions): Promise<BuildResult> {
  return new Builder(opts).build();
}
