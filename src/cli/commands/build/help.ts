/** The help of `unikraft build`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';
import { GLOBAL_OPTIONS } from '../../global-options.js';

/** The `build` options; the CLI's `-o` is `--output` here, so only --config and --profile of the globals apply. */
export const BUILD_HELP = {
  synopsis: ['[DIR] --output REF|DIR|FILE.oci.tar [options] [-- CMD...]'],
  summary: 'build a Dockerfile + Kraftfile into a Unikraft-layout OCI image and push or write it',
  options: {
    output: { type: 'string', short: 'o', value: 'REF|DIR|FILE.oci.tar', help: 'where the image goes: a registry reference, an OCI layout directory, or an OCI archive' },
    kraftfile: { type: 'string', short: 'K', value: 'FILE', help: 'the Kraftfile (default DIR/Kraftfile, kraft.yaml or kraft.yml)' },
    'build-arg': { type: 'string', multiple: true, value: 'K=V', help: 'a Dockerfile ARG value' },
    'build-context': { type: 'string', multiple: true, value: 'NAME=PATH', help: 'a named context for COPY --from=NAME' },
    'no-cache': { type: 'boolean', help: 'run every step again, ignoring the build cache' },
    target: { type: 'string', value: 'STAGE', help: 'build up to this Dockerfile stage' },
    'rootfs-format': { type: 'string', value: 'cpio|erofs', help: "the initrd's format (default the Kraftfile's, else erofs)" },
    insecure: { type: 'boolean', help: 'allow plain HTTP to non-loopback registries' },
    registry: { type: 'string', value: 'HOST[:PORT]', help: 'the central registry: runtimes, short names, mirror for Docker Hub names (default UKC_REGISTRY, else the profile\'s)' },
    mirror: { type: 'string', multiple: true, value: 'HOST[:PORT]', help: 'another mirror for Docker Hub names (also UKC_REGISTRY_MIRRORS, comma-separated)' },
    arch: { type: 'string', value: 'x86_64', help: 'target architecture (only x86_64)' },
    'cache-dir': { type: 'string', value: 'DIR', help: 'build cache (default UKC_CACHE_DIR, else ~/.cache/ukc)' },
  },
  globalOptions: { config: GLOBAL_OPTIONS.config, profile: GLOBAL_OPTIONS.profile },
  notes: 'environment: UKC_TOKEN (sent only to the platform\'s registries), UKC_REGISTRY, UKC_REGISTRY_MIRRORS, SOURCE_DATE_EPOCH, UKC_CACHE_DIR',
} as const satisfies CommandHelp;

export const buildSpec: CliCommandSpec = {
  name: 'build',
  summary: BUILD_HELP.summary,
  help: BUILD_HELP,
};
