// Public face of src/client: the OCI registry client (pull/push, token auth,
// mirrors, retries), whole-image transfers, and progress rendering.
export { parseChallenges, type Challenge, type Credentials, type TokenAuthOptions } from './auth.js';
export * from './errors.js';
export { pullImage, pushImage, manifestBlobs, mapLimit, type PullImageOptions, type PullImageResult, type PushImageOptions, type PushImageResult } from './image.js';
export { checkRepositoryName, InvalidNameError, isTag, parseManifestRef, type ManifestRef } from './names.js';
export * from './progress.js';
export * from './registry-client.js';
export { isLoopbackHost, type AgentPair } from './transport.js';
export * from './platform.js';
// The service-group port rules (reference §6) and the `-p` shorthand: the API's own vocabulary,
// shared by the CLI (which checks `-p` before sending) and the node (which enforces them).
export * from './service-rules.js';
