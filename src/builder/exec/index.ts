// Public face of src/builder/exec: the Dockerfile executor, `unikraft build` end to end, base-image pulls.
export { Builder, BuildStepError, buildDockerfile, DEFAULT_SHELL, emptyConfig } from './executor.js';
export type { BaseImage, BuildOptions, BuildResult, ImageResolver, StageConfig } from './executor.js';
export { buildProject, projectImageName } from './project.js';
export type { ProjectBuildOptions, ProjectBuildResult } from './project.js';
export { pullToBlobDir, registryImageResolver, stageConfigFromImage } from './images.js';
export type { PulledImage, RegistryResolverOptions } from './images.js';
export { DEFAULT_URL_MAX_BYTES, downloadUrl, isPrivateAddress, UrlRefusedError } from './download.js';
export type { UrlPolicy } from './download.js';
export { ArchiveError, DEFAULT_ARCHIVE_LIMITS, detectArchive, extractArchive } from './archive.js';
export type { ArchiveKind, ArchiveLimits } from './archive.js';
