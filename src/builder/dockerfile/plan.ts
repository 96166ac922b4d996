/**
 * The stage plan: which stages a build needs, in which order, and — given each
 * base image's config — every stage's steps with their arguments expanded and its
 * final image config. Pure: no I/O; the executor performs the steps.
 *
 * Two phases, because a base image's config (its Env in particular) takes part in
 * expansion and must be fetched first:
 * 1. `planBuild(parsed, options)`: global ARGs, stages (`FROM … AS name`), the
 *    dependency graph (FROM <stage>, COPY --from), the stages the target needs in
 *    dependency order, the image references to fetch, unused build args.
 * 2. `resolveStages(plan, baseConfigOf)`: walks each needed stage's instructions in
 *    order. RUN cannot change the config, so the whole config evolution is static.
 *
 * Scoping rules (Docker's):
 * - ARG before the first FROM is global: usable in FROM lines (and COPY --from) only;
 *   inside a stage, `ARG NAME` without a default takes the global's value.
 * - `--build-arg` only sets declared ARGs; others are reported in `unusedBuildArgs`
 *   (the proxy variables are predefined and reach RUN without a declaration).
 * - Expansion sees ENV first, then stage ARGs: ENV beats ARG. Stage ARGs reach RUN
 *   as environment but are never written into the image config.
 * - Only ADD, COPY, ENV, EXPOSE, FROM, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (and
 *   ARG defaults, COPY/ADD flags and heredoc bodies) are expanded; RUN, CMD and
 *   ENTRYPOINT text is left to the shell.
 */
import { posix } from 'node:path';
import { ExpansionError, expandWord, splitWords, type EscapeChar, type VariableLookup } from './expand.js';
import { DockerfileError, flagValue, flagValues, type Heredoc, type Instruction, type ParsedDockerfile } from './parser.js';

/** The `config` object of an OCI image config (the fields a Dockerfile can set). */
export interface ImageConfig {
  User?: string;
  ExposedPorts?: Record<string, Record<string, never>>;
  Env?: string[];
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Volumes?: Record<string, Record<string, never>>;
  WorkingDir?: string;
  Labels?: Record<string, string>;
  StopSignal?: string;
  Shell?: string[];
  Healthcheck?: HealthcheckConfig;
  OnBuild?: string[];
}

export interface HealthcheckConfig {
  Test: string[];
  /** Durations in nanoseconds, as Docker stores them. */
  Interval?: number;
  Timeout?: number;
  StartPeriod?: number;
  StartInterval?: number;
  Retries?: number;
}

export type StageBase =
  | { kind: 'scratch' }
  | { kind: 'stage'; index: number }
  | { kind: 'image'; ref: string };

export type CopyOrigin = { kind: 'context' } | { kind: 'stage'; index: number } | { kind: 'image'; ref: string };

export interface StagePlan {
  index: number;
  /** Lower-cased `AS` name, or null. */
  name: string | null;
  line: number;
  base: StageBase;
  platform: string | null;
  instructions: Instruction[];
  /** Stages this one reads (FROM <stage>, COPY --from=<stage>), ascending. */
  dependsOn: number[];
}

export interface BuildPlan {
  file: string;
  escape: EscapeChar;
  /** Global ARG values after build args (undefined: declared without a value). */
  globalArgs: ReadonlyMap<string, string | undefined>;
  /** The automatic platform ARGs in effect. */
  platformArgs: ReadonlyMap<string, string>;
  stages: StagePlan[];
  target: number;
  /** Indexes of the stages to build, each after the stages it depends on; ends with `target`. */
  order: number[];
  /** Distinct image references the needed stages use (FROM and COPY --from), in first-use order. */
  imageRefs: string[];
  buildArgs: ReadonlyMap<string, string>;
  unusedBuildArgs: string[];
  warnings: string[];
}

export interface PlanOptions {
  /** Stage name (case-insensitive) to build; default the last stage. */
  target?: string;
  buildArgs?: Readonly<Record<string, string>>;
  /**
   * Automatic platform ARGs, usable in FROM lines without declaration and inside a
   * stage once declared with `ARG NAME`.
   */
  platformArgs?: Readonly<Record<string, string>>;
  /** Upper bound on ports a single EXPOSE range may expand to. */
  maxExposedPorts?: number;
}

export const DEFAULT_PLATFORM_ARGS: Readonly<Record<string, string>> = {
  BUILDPLATFORM: 'linux/amd64',
  BUILDOS: 'linux',
  BUILDARCH: 'amd64',
  BUILDVARIANT: '',
  TARGETPLATFORM: 'linux/amd64',
  TARGETOS: 'linux',
  TARGETARCH: 'amd64',
  TARGETVARIANT: '',
};
export const DEFAULT_MAX_EXPOSED_PORTS = 4096;

/** Build args Docker passes to RUN without an ARG declaration (and keeps out of the image). */
export const PROXY_BUILD_ARGS: readonly string[] = [
  'HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy',
  'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy',
];

const STAGE_NAME_RE = /^[a-z][a-z0-9\-_.]*$/;
const ARG_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

function fail(file: string, ins: Instruction, reason: string): never {
  throw new DockerfileError(file, ins.line, ins.keyword, reason);
}

function expandOrFail(file: string, ins: Instruction, word: string, lookup: VariableLookup, escape: EscapeChar): string {
  try {
    return expandWord(word, lookup, { escape });
  } catch (err) {
    if (err instanceof ExpansionError) fail(file, ins, err.message);
    throw err;
  }
}

interface ArgDecl {
  name: string;
  /** Raw default text (unexpanded), if `=` was given. */
  rawDefault: string | undefined;
}

function parseArgDecls(file: string, ins: Instruction, escape: EscapeChar): ArgDecl[] {
  const words = splitWords(ins.args, escape);
  return words.map((word) => {
    const eq = word.indexOf('=');
    const name = eq < 0 ? word : word.slice(0, eq);
    if (!ARG_NAME_RE.test(name)) fail(file, ins, `invalid ARG name "${name}"`);
    return { name, rawDefault: eq < 0 ? undefined : word.slice(eq + 1) };
  });
}

function lookupIn(...maps: ReadonlyMap<string, string | undefined>[]): VariableLookup {
  return (name) => {
    for (const m of maps) {
      const v = m.get(name);
      if (v !== undefined) return v;
    }
    return undefined;
  };
}

/** Phase 1: stages, dependencies, target closure. */
export function planBuild(parsed: ParsedDockerfile, options: PlanOptions = {}): BuildPlan {
  const { file } = parsed;
  const escape = parsed.directives.escape;
  const buildArgs = new Map(Object.entries(options.buildArgs ?? {}));
  const platformArgs = new Map(Object.entries(options.platformArgs ?? DEFAULT_PLATFORM_ARGS));
  const warnings = [...parsed.warnings];
  const globalArgs = new Map<string, string | undefined>();
  const declared = new Set<string>();

  const firstFrom = parsed.instructions.findIndex((i) => i.keyword === 'FROM');
  if (firstFrom < 0) {
    throw new DockerfileError(file, parsed.instructions[0]?.line ?? 1, null, 'no FROM instruction: a Dockerfile needs at least one stage');
  }
  for (const ins of parsed.instructions.slice(0, firstFrom)) {
    if (ins.keyword !== 'ARG') fail(file, ins, 'only ARG may come before the first FROM (no build stage in current context)');
    for (const decl of parseArgDecls(file, ins, escape)) {
      declared.add(decl.name);
      const fallback = decl.rawDefault === undefined
        ? undefined
        : expandOrFail(file, ins, decl.rawDefault, lookupIn(globalArgs, platformArgs), escape);
      globalArgs.set(decl.name, buildArgs.get(decl.name) ?? fallback);
    }
  }
  const globalLookup = lookupIn(globalArgs, platformArgs);

  // Split into stages.
  interface RawStage { from: Instruction; body: Instruction[] }
  const raw: RawStage[] = [];
  for (const ins of parsed.instructions.slice(firstFrom)) {
    if (ins.keyword === 'FROM') raw.push({ from: ins, body: [] });
    else (raw[raw.length - 1] as RawStage).body.push(ins);
  }
  const names = new Map<string, number>();
  const parsedFrom = raw.map((stage, index) => {
    const ins = stage.from;
    const words = splitWords(ins.args, escape);
    let name: string | null = null;
    if (words.length === 3 && (words[1] as string).toLowerCase() === 'as') {
      name = (words[2] as string).toLowerCase();
      if (!STAGE_NAME_RE.test(name)) fail(file, ins, `invalid stage name "${words[2]}": use letters, digits, '-', '_' and '.', starting with a letter`);
      if (names.has(name)) fail(file, ins, `duplicate stage name "${name}" (first used at line ${raw[names.get(name) as number]?.from.line})`);
      names.set(name, index);
    } else if (words.length !== 1) {
      fail(file, ins, 'FROM takes an image or stage and optionally "AS <name>"');
    }
    const baseText = expandOrFail(file, ins, words[0] as string, globalLookup, escape);
    if (baseText === '') fail(file, ins, `base name (${words[0]}) should not be blank`);
    const platformRaw = flagValue(ins, 'platform');
    const platform = platformRaw === undefined ? null : expandOrFail(file, ins, platformRaw, globalLookup, escape);
    return { name, baseText, platform };
  });

  const stageRef = (ref: string): number | undefined => names.get(ref.toLowerCase());
  const stages: StagePlan[] = raw.map((stage, index) => {
    const { name, baseText, platform } = parsedFrom[index] as (typeof parsedFrom)[number];
    const deps = new Set<number>();
    let base: StageBase;
    const baseStage = stageRef(baseText);
    if (baseText.toLowerCase() === 'scratch') base = { kind: 'scratch' };
    else if (baseStage !== undefined) {
      if (baseStage === index) fail(file, stage.from, `stage "${name}" cannot be based on itself`);
      base = { kind: 'stage', index: baseStage };
      deps.add(baseStage);
    } else base = { kind: 'image', ref: baseText };
    for (const ins of stage.body) {
      if (ins.keyword !== 'COPY') continue;
      const origin = copyOrigin(file, ins, index, raw.length, stageRef, globalLookup, escape);
      if (origin.kind === 'stage') deps.add(origin.index);
    }
    return { index, name, line: stage.from.line, base, platform, instructions: stage.body, dependsOn: [...deps].sort((a, b) => a - b) };
  });

  let target = stages.length - 1;
  if (options.target !== undefined) {
    const t = stageRef(options.target);
    if (t === undefined) {
      const known = [...names.keys()].join(', ') || 'none';
      throw new DockerfileError(file, 1, null, `target stage "${options.target}" could not be found (named stages: ${known})`);
    }
    target = t;
  }

  // Depth-first from the target; a grey node met again is a cycle.
  const order: number[] = [];
  const colour = new Map<number, 'grey' | 'black'>();
  const visit = (i: number, path: number[]): void => {
    const c = colour.get(i);
    if (c === 'black') return;
    const stage = stages[i] as StagePlan;
    if (c === 'grey') {
      const cycle = [...path.slice(path.indexOf(i)), i].map((s) => stages[s]?.name ?? String(s)).join(' -> ');
      throw new DockerfileError(file, stage.line, 'FROM', `circular dependency between stages: ${cycle}`);
    }
    colour.set(i, 'grey');
    for (const d of stage.dependsOn) visit(d, [...path, i]);
    colour.set(i, 'black');
    order.push(i);
  };
  visit(target, []);

  const imageRefs: string[] = [];
  const addRef = (ref: string): void => {
    if (!imageRefs.includes(ref)) imageRefs.push(ref);
  };
  for (const i of order) {
    const stage = stages[i] as StagePlan;
    if (stage.base.kind === 'image') addRef(stage.base.ref);
    for (const ins of stage.instructions) {
      if (ins.keyword !== 'COPY') continue;
      const origin = copyOrigin(file, ins, i, stages.length, stageRef, globalLookup, escape);
      if (origin.kind === 'image') addRef(origin.ref);
    }
    for (const ins of stage.instructions) {
      if (ins.keyword === 'ARG') for (const d of parseArgDecls(file, ins, escape)) declared.add(d.name);
    }
  }
  const unusedBuildArgs = [...buildArgs.keys()].filter((k) => !declared.has(k) && !PROXY_BUILD_ARGS.includes(k)).sort();
  if (unusedBuildArgs.length > 0) warnings.push(`build args not consumed by any ARG: ${unusedBuildArgs.join(', ')}`);
  return { file, escape, globalArgs, platformArgs, stages, target, order, imageRefs, buildArgs, unusedBuildArgs, warnings };
}

function copyOrigin(
  file: string,
  ins: Instruction,
  self: number,
  stageCount: number,
  stageRef: (ref: string) => number | undefined,
  globalLookup: VariableLookup,
  escape: EscapeChar,
): CopyOrigin {
  const raw = flagValue(ins, 'from');
  if (raw === undefined) return { kind: 'context' };
  const from = expandOrFail(file, ins, raw, globalLookup, escape);
  if (from === '') fail(file, ins, '--from is empty');
  let index: number | undefined;
  if (/^[0-9]+$/.test(from)) {
    index = Number(from);
    if (index >= stageCount) fail(file, ins, `--from=${from}: there is no stage with index ${from} (stages are numbered from 0)`);
  } else index = stageRef(from);
  if (index === self) fail(file, ins, `--from=${from}: a stage cannot copy from itself`);
  return index === undefined ? { kind: 'image', ref: from } : { kind: 'stage', index };
}

// ---------------------------------------------------------------------------
// Phase 2: steps and configs.

export type RunExec = { kind: 'argv'; argv: string[] } | { kind: 'script'; content: string };

export interface RunStep {
  kind: 'run';
  line: number;
  /**
   * What to execute. `script`: a lone heredoc starting with `#!` — write it to a
   * file and execute the file directly (BuildKit's behaviour).
   */
  exec: RunExec;
  shellForm: boolean;
  /** The full environment for the process: image Env, then stage ARGs ENV does not shadow, then proxy args. */
  env: string[];
  user: string;
  workdir: string;
  /** Parsed `--mount` flags; `--network`, `--security` raw. The executor decides what it supports. */
  mounts: RunMount[];
  network: string | null;
  security: string | null;
}

export type RunMountType = 'bind' | 'cache' | 'tmpfs' | 'secret' | 'ssh';

export interface RunMount {
  type: RunMountType;
  /** Absolute path inside the stage ('' for secret/ssh without a target: their defaults apply). */
  target: string;
  source: string | null;
  /** Stage or image to read a bind/cache source from. */
  from: string | null;
  readOnly: boolean;
  id: string | null;
  sharing: 'shared' | 'private' | 'locked';
  mode: number | null;
  uid: number | null;
  gid: number | null;
  required: boolean;
  /** tmpfs size in bytes, or null. */
  size: number | null;
}

export class MountSpecError extends Error {}

const MOUNT_TYPES: readonly RunMountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];

function mountBool(key: string, value: string | null): boolean {
  if (value === null || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw new MountSpecError(`${key} must be true or false, not "${value}"`);
}

function mountInt(key: string, value: string | null, radix: number): number {
  if (value === null || !(radix === 8 ? /^[0-7]+$/ : /^[0-9]+$/).test(value)) throw new MountSpecError(`${key} needs a number`);
  return parseInt(value, radix);
}

/** Parses a `RUN --mount=` value (comma-separated key=value, BuildKit's fields). */
export function parseRunMount(spec: string): RunMount {
  const fields = spec.split(',').map((f) => f.trim()).filter((f) => f !== '');
  const m: RunMount = { type: 'bind', target: '', source: null, from: null, readOnly: true, id: null, sharing: 'shared', mode: null, uid: null, gid: null, required: false, size: null };
  let readOnlySet = false;
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? null : field.slice(eq + 1);
    const need = (): string => {
      if (value === null || value === '') throw new MountSpecError(`${key} needs a value`);
      return value;
    };
    switch (key) {
      case 'type': {
        const t = need();
        if (!(MOUNT_TYPES as readonly string[]).includes(t)) throw new MountSpecError(`unsupported mount type "${t}" (known: ${MOUNT_TYPES.join(', ')})`);
        m.type = t as RunMountType;
        break;
      }
      case 'target': case 'dst': case 'destination': m.target = need(); break;
      case 'source': case 'src': m.source = need(); break;
      case 'from': m.from = need(); break;
      case 'id': m.id = need(); break;
      case 'readonly': case 'ro': m.readOnly = mountBool(key, value); readOnlySet = true; break;
      case 'readwrite': case 'rw': m.readOnly = !mountBool(key, value); readOnlySet = true; break;
      case 'required': m.required = mountBool(key, value); break;
      case 'sharing': {
        const v = need();
        if (v !== 'shared' && v !== 'private' && v !== 'locked') throw new MountSpecError(`sharing must be shared, private or locked`);
        m.sharing = v;
        break;
      }
      case 'mode': m.mode = mountInt(key, value, 8); break;
      case 'uid': m.uid = mountInt(key, value, 10); break;
      case 'gid': m.gid = mountInt(key, value, 10); break;
      case 'size': m.size = mountInt(key, value, 10); break;
      default: throw new MountSpecError(`unknown mount option "${key}"`);
    }
  }
  if (!readOnlySet) m.readOnly = m.type === 'bind' || m.type === 'secret' || m.type === 'ssh';
  if (m.target === '' && m.type !== 'secret' && m.type !== 'ssh') throw new MountSpecError('target is required');
  if (m.target !== '' && !m.target.startsWith('/')) m.target = posix.join('/', m.target);
  return m;
}

export type CopySource = { kind: 'path'; path: string } | { kind: 'heredoc'; name: string; content: string };

export interface CopyStep {
  kind: 'copy';
  line: number;
  keyword: 'COPY' | 'ADD';
  from: CopyOrigin;
  sources: CopySource[];
  /** Absolute destination in the stage, resolved against WORKDIR, normalised (no trailing slash except `/`). */
  dest: string;
  /** True when the destination was written as a directory (`dir/`, `.`, `..`). */
  destIsDir: boolean;
  chown: string | null;
  /** Parsed octal mode, or null. */
  chmod: number | null;
  link: boolean;
  parents: boolean;
  excludes: string[];
  checksum: string | null;
  keepGitDir: boolean;
}

/** WORKDIR: the executor creates the directory if missing. */
export interface WorkdirStep {
  kind: 'workdir';
  line: number;
  path: string;
}

export type Step = RunStep | CopyStep | WorkdirStep;

export interface ResolvedStage {
  index: number;
  name: string | null;
  base: StageBase;
  /** True when the stage's chain of bases ends in `scratch`. */
  fromScratch: boolean;
  steps: Step[];
  /** The image config after the stage (base config with this stage's changes). */
  config: ImageConfig;
  /** MAINTAINER, if any (OCI `author`). */
  author: string | null;
  warnings: string[];
}

const DEFAULT_SHELL = ['/bin/sh', '-c'];

function envSet(env: string[], key: string, value: string): string[] {
  const entry = `${key}=${value}`;
  const at = env.findIndex((e) => e.split('=', 1)[0] === key);
  if (at < 0) return [...env, entry];
  const copy = [...env];
  copy[at] = entry;
  return copy;
}

function envMap(env: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of env) {
    const eq = e.indexOf('=');
    if (eq > 0) m.set(e.slice(0, eq), e.slice(eq + 1));
  }
  return m;
}

const DURATION_UNITS: Record<string, number> = { ns: 1, us: 1e3, µs: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go `time.ParseDuration` for the non-negative durations HEALTHCHECK takes; nanoseconds. */
export function parseGoDuration(text: string): number | null {
  if (text === '0') return 0;
  const re = /([0-9]*\.?[0-9]+)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    total += Number(m[1]) * (DURATION_UNITS[m[2] as string] as number);
    consumed = re.lastIndex;
  }
  return consumed === text.length && consumed > 0 ? Math.round(total) : null;
}

/** KEY=VALUE pairs (or the legacy `KEY VALUE` single pair) for ENV and LABEL. */
function nameValuePairs(file: string, ins: Instruction, escape: EscapeChar, lookup: VariableLookup): [string, string][] {
  const words = splitWords(ins.args, escape);
  const first = words[0] as string;
  if (!first.includes('=')) {
    // Legacy form: the first word is the key, the rest of the line the value.
    const value = ins.args.slice(ins.args.indexOf(first) + first.length).trim();
    if (value === '') fail(file, ins, `${ins.keyword} needs KEY=VALUE (or KEY VALUE); got only "${first}"`);
    return [[expandOrFail(file, ins, first, lookup, escape), expandOrFail(file, ins, value, lookup, escape)]];
  }
  return words.map((word) => {
    const eq = word.indexOf('=');
    if (eq < 0) fail(file, ins, `can't find = in "${word}": must be of the form name=value`);
    const key = expandOrFail(file, ins, word.slice(0, eq), lookup, escape);
    if (key === '') fail(file, ins, `empty name in "${word}"`);
    return [key, expandOrFail(file, ins, word.slice(eq + 1), lookup, escape)];
  });
}

function expandedWords(file: string, ins: Instruction, escape: EscapeChar, lookup: VariableLookup): string[] {
  const words = ins.json ?? splitWords(ins.args, escape);
  return words.map((w) => expandOrFail(file, ins, w, lookup, escape));
}

function exposedPorts(file: string, ins: Instruction, specs: string[], maxPorts: number): string[] {
  const out: string[] = [];
  for (const spec of specs) {
    const m = /^([0-9]+)(?:-([0-9]+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
    if (!m) fail(file, ins, `invalid port "${spec}": use PORT, PORT/tcp, PORT/udp or a range LOW-HIGH`);
    const low = Number(m[1]);
    const high = m[2] === undefined ? low : Number(m[2]);
    if (low > 65535 || high > 65535 || high < low) fail(file, ins, `invalid port range "${spec}"`);
    if (high - low + 1 > maxPorts) fail(file, ins, `port range "${spec}" exceeds ${maxPorts} ports`);
    const proto = (m[3] ?? 'tcp').toLowerCase();
    for (let p = low; p <= high; p++) out.push(`${p}/${proto}`);
  }
  return out;
}

function shellCommand(config: ImageConfig, text: string): string[] {
  return [...(config.Shell ?? DEFAULT_SHELL), text];
}

/** The RUN/CMD/ENTRYPOINT text with heredoc bodies appended, as a shell reads them. */
function withHeredocs(args: string, heredocs: Heredoc[]): string {
  if (heredocs.length === 0) return args;
  return args + '\n' + heredocs.map((h) => `${h.content}${h.name}\n`).join('');
}

function cloneConfig(c: ImageConfig): ImageConfig {
  return structuredClone(c);
}

export interface ResolveOptions {
  maxExposedPorts?: number;
}

/**
 * Phase 2. `baseConfigOf(ref)` returns the config of a base image named in
 * `plan.imageRefs` (throw if unknown). Returns the needed stages in `plan.order`.
 */
export function resolveStages(
  plan: BuildPlan,
  baseConfigOf: (ref: string) => ImageConfig,
  options: ResolveOptions = {},
): ResolvedStage[] {
  const done = new Map<number, ResolvedStage>();
  for (const i of plan.order) done.set(i, resolveStage(stageState(plan, i, baseConfigOf, done, options)));
  return plan.order.map((i) => done.get(i) as ResolvedStage);
}

/** What one stage's instructions act on, in order: the config so far, the stage's ARGs, its steps and warnings. */
interface StageState {
  readonly plan: BuildPlan;
  readonly index: number;
  readonly config: ImageConfig;
  readonly fromScratch: boolean;
  author: string | null;
  readonly stageArgs: Map<string, string | undefined>;
  /** Variables as the stage sees them now: ENV first, then ARG. */
  readonly lookup: VariableLookup;
  /** CMD was set in this stage (ENTRYPOINT then leaves it alone). */
  cmdSet: boolean;
  readonly steps: Step[];
  readonly warnings: string[];
  readonly maxPorts: number;
}

/** Runs a stage's instructions, in order, over the state its base gave it. */
function resolveStage(s: StageState): ResolvedStage {
  const { index } = s;
  const stage = s.plan.stages[index] as StagePlan;
  for (const ins of stage.instructions) applyInstruction(s, ins);
  return { index, name: stage.name, base: stage.base, fromScratch: s.fromScratch, steps: s.steps, config: s.config, author: s.author, warnings: s.warnings };
}

/** The state a stage starts from: its base's config (scratch, an earlier stage, or an image), ONBUILD triggers dropped. */
function stageState(
  plan: BuildPlan,
  index: number,
  baseConfigOf: (ref: string) => ImageConfig,
  done: ReadonlyMap<number, ResolvedStage>,
  options: ResolveOptions,
): StageState {
  const { file } = plan;
  const stage = plan.stages[index] as StagePlan;
  const warnings: string[] = [];
  let config: ImageConfig;
  let fromScratch: boolean;
  let author: string | null = null;
  if (stage.base.kind === 'scratch') {
    config = {};
    fromScratch = true;
  } else if (stage.base.kind === 'stage') {
    const parent = done.get(stage.base.index) as ResolvedStage;
    config = cloneConfig(parent.config);
    fromScratch = parent.fromScratch;
    author = parent.author;
  } else {
    config = cloneConfig(baseConfigOf(stage.base.ref));
    fromScratch = false;
  }
  if (config.OnBuild && config.OnBuild.length > 0) {
    warnings.push(`${file}:${stage.line}: the base image's ONBUILD triggers are not run (${config.OnBuild.length} ignored)`);
  }
  delete config.OnBuild;
  const stageArgs = new Map<string, string | undefined>();
  return {
    plan,
    index,
    config,
    fromScratch,
    author,
    stageArgs,
    lookup: (name) => envMap(config.Env ?? []).get(name) ?? stageArgs.get(name),
    cmdSet: false,
    steps: [],
    warnings,
    maxPorts: options.maxExposedPorts ?? DEFAULT_MAX_EXPOSED_PORTS,
  };
}

/** The environment a RUN step sees: ENV, then the stage's ARGs, then the proxy build args, each unless already set. */
function runEnv(s: StageState): string[] {
  const { config, stageArgs, plan } = s;
  let env = [...(config.Env ?? [])];
  const inEnv = envMap(env);
  for (const [k, v] of stageArgs) if (v !== undefined && !inEnv.has(k)) env = [...env, `${k}=${v}`];
  for (const k of PROXY_BUILD_ARGS) {
    const v = plan.buildArgs.get(k);
    if (v !== undefined && !inEnv.has(k) && !stageArgs.has(k)) env = [...env, `${k}=${v}`];
  }
  return env;
}

function warnShellForm(s: StageState, ins: Instruction): void {
  if (s.fromScratch) {
    s.warnings.push(`${s.plan.file}:${ins.line} ${ins.keyword}: shell form in a stage based on scratch runs /bin/sh, which scratch does not have; use the JSON form ["cmd", "arg"]`);
  }
}

/** ARG: each declared name takes the build arg, else its default, else (without a default) the global or platform arg. */
function declareArgs(s: StageState, ins: Instruction): void {
  const { plan, lookup } = s;
  const { file, escape } = plan;
  for (const decl of parseArgDecls(file, ins, escape)) {
    const fallback = decl.rawDefault === undefined ? undefined : expandOrFail(file, ins, decl.rawDefault, lookup, escape);
    let value = plan.buildArgs.get(decl.name) ?? fallback;
    if (value === undefined && decl.rawDefault === undefined) {
      value = plan.globalArgs.get(decl.name) ?? plan.platformArgs.get(decl.name);
    }
    s.stageArgs.set(decl.name, value);
  }
}

/** RUN: the step to execute (argv, shell form, heredoc script), with its environment, user, workdir and flags. */
function runStep(s: StageState, ins: Instruction): Step {
  const { config, lookup } = s;
  const { file, escape } = s.plan;
  const sole = ins.heredocs.length === 1 && splitWords(ins.args, escape).length === 1;
  let exec: RunExec;
  if (ins.json !== null) exec = { kind: 'argv', argv: ins.json };
  else if (sole && (ins.heredocs[0] as Heredoc).content.startsWith('#!')) exec = { kind: 'script', content: (ins.heredocs[0] as Heredoc).content };
  else if (sole) exec = { kind: 'argv', argv: shellCommand(config, (ins.heredocs[0] as Heredoc).content) };
  else exec = { kind: 'argv', argv: shellCommand(config, withHeredocs(ins.args, ins.heredocs)) };
  if (exec.kind === 'argv' && exec.argv.length === 0) fail(file, ins, 'RUN [] has nothing to run');
  return {
    kind: 'run',
    line: ins.line,
    exec,
    shellForm: ins.json === null,
    env: runEnv(s),
    user: config.User ?? '',
    workdir: config.WorkingDir || '/',
    mounts: flagValues(ins, 'mount').map((m) => {
      try {
        return parseRunMount(expandWord(m, lookup, { escape }));
      } catch (err) {
        if (err instanceof ExpansionError || err instanceof MountSpecError) fail(file, ins, `--mount=${m}: ${err.message}`);
        throw err;
      }
    }),
    network: flagValue(ins, 'network') ?? null,
    security: flagValue(ins, 'security') ?? null,
  };
}

/** One instruction's effect on the stage: the config it changes and the step it adds, if any. */
function applyInstruction(s: StageState, ins: Instruction): void {
  const { plan, index, config, lookup, steps, warnings, maxPorts } = s;
  const { file, escape } = plan;
  switch (ins.keyword) {
    case 'ARG':
      declareArgs(s, ins);
      break;
    case 'ENV':
      for (const [k, v] of nameValuePairs(file, ins, escape, lookup)) config.Env = envSet(config.Env ?? [], k, v);
      break;
    case 'LABEL':
      for (const [k, v] of nameValuePairs(file, ins, escape, lookup)) config.Labels = { ...(config.Labels ?? {}), [k]: v };
      break;
    case 'WORKDIR': {
      const dir = expandOrFail(file, ins, ins.args, lookup, escape);
      config.WorkingDir = posix.resolve(config.WorkingDir || '/', dir);
      steps.push({ kind: 'workdir', line: ins.line, path: config.WorkingDir });
      break;
    }
    case 'USER': {
      const user = expandOrFail(file, ins, ins.args, lookup, escape);
      if (user === '') fail(file, ins, 'USER is empty after expansion');
      config.User = user;
      break;
    }
    case 'EXPOSE':
      for (const port of exposedPorts(file, ins, expandedWords(file, ins, escape, lookup), maxPorts)) {
        config.ExposedPorts = { ...(config.ExposedPorts ?? {}), [port]: {} };
      }
      break;
    case 'VOLUME': {
      const vols = expandedWords(file, ins, escape, lookup);
      if (vols.length === 0 || vols.some((v) => v.trim() === '')) fail(file, ins, 'VOLUME names an empty path');
      for (const v of vols) config.Volumes = { ...(config.Volumes ?? {}), [v]: {} };
      break;
    }
    case 'STOPSIGNAL': {
      const sig = expandOrFail(file, ins, ins.args, lookup, escape);
      if (!/^(SIG)?[A-Z][A-Z0-9+-]*$|^[0-9]+$/.test(sig)) fail(file, ins, `invalid signal "${sig}"`);
      config.StopSignal = sig;
      break;
    }
    case 'SHELL':
      if (ins.json === null || ins.json.length === 0) fail(file, ins, 'SHELL requires the arguments in JSON form, e.g. ["/bin/bash", "-c"]');
      config.Shell = ins.json;
      break;
    case 'CMD':
      if (ins.json === null) warnShellForm(s, ins);
      config.Cmd = ins.json ?? shellCommand(config, ins.args);
      s.cmdSet = true;
      break;
    case 'ENTRYPOINT':
      if (ins.json === null) warnShellForm(s, ins);
      config.Entrypoint = ins.json ?? shellCommand(config, ins.args);
      if (!s.cmdSet) config.Cmd = null;
      break;
    case 'HEALTHCHECK':
      config.Healthcheck = healthcheck(file, ins);
      break;
    case 'ONBUILD': {
      const inner = /^(\S+)\s*([\s\S]*)$/.exec(ins.args) as RegExpExecArray;
      const kw = (inner[1] as string).toUpperCase();
      if (kw === 'ONBUILD' || kw === 'FROM' || kw === 'MAINTAINER') fail(file, ins, `${kw} isn't allowed as an ONBUILD trigger`);
      config.OnBuild = [...(config.OnBuild ?? []), `${kw} ${inner[2]}`.trim()];
      break;
    }
    case 'MAINTAINER':
      s.author = ins.args;
      warnings.push(`${file}:${ins.line} MAINTAINER is deprecated; use LABEL org.opencontainers.image.authors=...`);
      break;
    case 'RUN':
      steps.push(runStep(s, ins));
      break;
    case 'COPY':
    case 'ADD':
      steps.push(copyStep(plan, index, ins, lookup, config.WorkingDir || '/'));
      break;
    case 'FROM':
      break; // Not reachable: FROM starts a new stage.
  }
}

function healthcheck(file: string, ins: Instruction): HealthcheckConfig {
  const m = /^(\S+)\s*([\s\S]*)$/.exec(ins.args) as RegExpExecArray;
  const kind = (m[1] as string).toUpperCase();
  if (kind === 'NONE') {
    if ((m[2] as string) !== '' || ins.flags.length > 0) fail(file, ins, 'HEALTHCHECK NONE takes no other arguments');
    return { Test: ['NONE'] };
  }
  if (kind !== 'CMD') fail(file, ins, 'HEALTHCHECK must be NONE or CMD <command>');
  const rest = (m[2] as string).trim();
  if (rest === '') fail(file, ins, 'HEALTHCHECK CMD needs a command');
  let json: string[] | null = null;
  try {
    const v: unknown = JSON.parse(rest);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) json = v as string[];
  } catch {
    json = null;
  }
  const hc: HealthcheckConfig = { Test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
  const durations: [string, 'Interval' | 'Timeout' | 'StartPeriod' | 'StartInterval'][] = [
    ['interval', 'Interval'], ['timeout', 'Timeout'], ['start-period', 'StartPeriod'], ['start-interval', 'StartInterval'],
  ];
  for (const [flag, field] of durations) {
    const v = flagValue(ins, flag);
    if (v === undefined) continue;
    const ns = parseGoDuration(v);
    if (ns === null) fail(file, ins, `--${flag}: invalid duration "${v}"`);
    hc[field] = ns;
  }
  const retries = flagValue(ins, 'retries');
  if (retries !== undefined) {
    if (!/^[0-9]+$/.test(retries)) fail(file, ins, `--retries: "${retries}" is not a whole number`);
    hc.Retries = Number(retries);
  }
  return hc;
}

function copyStep(plan: BuildPlan, index: number, ins: Instruction, lookup: VariableLookup, workdir: string): CopyStep {
  const { file, escape } = plan;
  const keyword = ins.keyword as 'COPY' | 'ADD';
  const words = ins.json ?? splitWords(ins.args, escape);
  if (words.length < 2) fail(file, ins, `${keyword} needs at least one source and a destination`);
  const heredocs = [...ins.heredocs];
  const sources: CopySource[] = words.slice(0, -1).map((word) => {
    if (ins.json === null && /^[0-9]*<<-?/.test(word) && heredocs.length > 0) {
      const h = heredocs.shift() as Heredoc;
      const content = h.expand ? expandRaw(file, ins, h.content, lookup, escape) : h.content;
      return { kind: 'heredoc', name: h.name, content };
    }
    const path = expandOrFail(file, ins, word, lookup, escape);
    if (path === '') fail(file, ins, `source "${word}" is empty after expansion`);
    return { kind: 'path', path };
  });
  const rawDest = expandOrFail(file, ins, words[words.length - 1] as string, lookup, escape);
  if (rawDest === '') fail(file, ins, 'destination is empty');
  const destIsDir = rawDest.endsWith('/') || rawDest === '.' || rawDest === '..' || rawDest.endsWith('/.') || rawDest.endsWith('/..');
  const dest = posix.resolve(workdir, rawDest);

  const chownRaw = flagValue(ins, 'chown');
  const chmodRaw = flagValue(ins, 'chmod');
  let chmod: number | null = null;
  if (chmodRaw !== undefined) {
    const mode = expandOrFail(file, ins, chmodRaw, lookup, escape);
    if (!/^[0-7]{1,4}$/.test(mode)) fail(file, ins, `--chmod=${mode}: use an octal mode such as 0755`);
    chmod = parseInt(mode, 8);
  }
  const globalLookup = lookupIn(plan.globalArgs, plan.platformArgs);
  const from = keyword === 'COPY'
    ? copyOrigin(file, ins, index, plan.stages.length, (r) => plan.stages.find((s) => s.name === r.toLowerCase())?.index, globalLookup, escape)
    : { kind: 'context' as const };
  const bool = (name: string): boolean => {
    const v = flagValue(ins, name);
    return v !== undefined && v !== 'false';
  };
  const checksum = flagValue(ins, 'checksum');
  return {
    kind: 'copy',
    line: ins.line,
    keyword,
    from,
    sources,
    dest,
    destIsDir,
    chown: chownRaw === undefined ? null : expandOrFail(file, ins, chownRaw, lookup, escape),
    chmod,
    link: bool('link'),
    parents: bool('parents'),
    excludes: flagValues(ins, 'exclude').map((e) => expandOrFail(file, ins, e, lookup, escape)),
    checksum: checksum === undefined ? null : expandOrFail(file, ins, checksum, lookup, escape),
    keepGitDir: bool('keep-git-dir'),
  };
}

function expandRaw(file: string, ins: Instruction, text: string, lookup: VariableLookup, escape: EscapeChar): string {
  try {
    return expandWord(text, lookup, { escape, raw: true });
  } catch (err) {
    if (err instanceof ExpansionError) fail(file, ins, `heredoc ${err.message}`);
    throw err;
  }
}
