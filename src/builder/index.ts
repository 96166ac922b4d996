// Public face of src/build: the front end of `unikraft build` (Kraftfile, Dockerfile
// parsing, expansion, stage planning, build-context matching). The executor,
// rootfs packing and image assembly build on these.
export {
  KRAFTFILE_NAMES,
  KNOWN_ARCHITECTURES,
  KNOWN_PLATFORMS,
  KraftfileError,
  SUPPORTED_SPECS,
  classifyRootfsFile,
  findKraftfile,
  loadKraftfile,
  parseKraftfile,
  quoteCommandWord,
  splitCommandLine,
} from './kraftfile.js';
export type {
  Kraftfile,
  KraftfileOptions,
  KraftfileSpec,
  KraftfileTarget,
  KraftfileValue,
  KraftfileVolume,
  LoadedKraftfile,
  ResolvedRootfs,
  RootfsFormat,
  RootfsKind,
  RootfsSpec,
} from './kraftfile.js';

export { ExpansionError, expandWord, lookupFromEnvList, splitWords } from './dockerfile/expand.js';
export type { EscapeChar, ExpandOptions, VariableLookup } from './dockerfile/expand.js';

export { DockerfileError, KEYWORDS, flagValue, flagValues, parseDockerfile } from './dockerfile/parser.js';
export type { Heredoc, Instruction, InstructionFlag, Keyword, ParsedDockerfile, ParserDirectives } from './dockerfile/parser.js';

export { DEFAULT_PLATFORM_ARGS, MountSpecError, PROXY_BUILD_ARGS, parseGoDuration, parseRunMount, planBuild, resolveStages } from './dockerfile/plan.js';
export type {
  BuildPlan,
  CopyOrigin,
  CopySource,
  CopyStep,
  HealthcheckConfig,
  ImageConfig,
  PlanOptions,
  ResolvedStage,
  ResolveOptions,
  RunExec,
  RunMount,
  RunMountType,
  RunStep,
  StageBase,
  StagePlan,
  Step,
  WorkdirStep,
} from './dockerfile/plan.js';

export {
  BadPatternError,
  ContextError,
  NO_FILTER,
  cleanSourcePath,
  createContextFilter,
  goMatch,
  hasWildcard,
  loadDockerignore,
  parseDockerignore,
  resolveCopySources,
  resolveInRoot,
  walkContext,
} from './context.js';
export type { ContextEntry, ContextFilter, CopyOperation, CopyRequest, WalkOptions } from './context.js';

// The back end: the executor and `unikraft build` end to end, packaging, the step cache.
export * from './exec/index.js';
export * from './package/index.js';
export * from './cache/index.js';
