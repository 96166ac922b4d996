/** The help of `unikraft images import`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';
import { GLOBAL_OPTIONS } from '../../global-options.js';

export const IMPORT_HELP = {
  synopsis: 'DIR|TARBALL --output REF|DIR|FILE.oci.tar [options]',
  summary: 'turn a root filesystem (dir or tarball) into an OCI image usable in FROM',
  options: {
    output: { type: 'string', short: 'o', value: 'REF|DIR|FILE.oci.tar', help: 'where the image goes: a registry reference, an OCI layout directory, or an OCI archive' },
    env: { type: 'string', multiple: true, value: 'K=V', help: 'an environment variable of the image config' },
    cmd: { type: 'string', multiple: true, value: 'WORD', help: 'one word of the image\'s Cmd' },
    entrypoint: { type: 'string', multiple: true, value: 'WORD', help: 'one word of the image\'s Entrypoint' },
    label: { type: 'string', multiple: true, value: 'K=V', help: 'an image label' },
    workdir: { type: 'string', value: 'DIR', help: 'the image\'s working directory' },
    compression: { type: 'string', value: 'gzip|none', help: 'layer compression (default gzip)' },
    insecure: { type: 'boolean', help: 'allow plain HTTP to non-loopback registries' },
  },
  globalOptions: { config: GLOBAL_OPTIONS.config, profile: GLOBAL_OPTIONS.profile },
} as const satisfies CommandHelp;

export const imagesImportSpec: CliCommandSpec = {
  name: 'import',
  summary: IMPORT_HELP.summary,
  help: IMPORT_HELP,
};
