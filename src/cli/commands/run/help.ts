/** The help of `unikraft run`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';

export const RUN_HELP = {
  synopsis: ['DIR [options] [-- ARGS...]', '--image REF [options] [-- ARGS...]'],
  summary: 'run an image (--image REF), or build, push and run a project directory in one step',
  options: {
    image: { type: 'string', value: 'REF', help: 'an existing image: NAME[:TAG][@DIGEST] in your namespace, or a full reference' },
    name: { type: 'string', short: 'n', value: 'NAME', help: 'the instance name (default generated)' },
    memory: { type: 'string', short: 'm', value: 'SIZE', help: 'memory, e.g. 512M or 1G (default the platform\'s)' },
    vcpus: { type: 'string', value: 'N', help: 'virtual CPUs' },
    env: { type: 'string', short: 'e', multiple: true, value: 'K=V', help: 'an environment variable' },
    publish: { type: 'string', short: 'p', multiple: true, value: 'PUBLIC:DEST[/tls+http]', help: 'publish DEST on the public port PUBLIC through the gateway' },
    port: { type: 'string', multiple: true, value: 'PUBLIC:DEST', help: 'the same as --publish (its older name here)' },
    domain: { type: 'string', multiple: true, value: 'DOMAIN', help: 'a domain (FQDN) for the service (needs -p)' },
    replicas: { type: 'string', value: 'N', help: 'extra instances of the same image (N+1 in all)' },
    'scale-to-zero': { type: 'string', value: 'policy=on,cooldown-time=MS,stateful=false', help: 'stop the instance when idle, wake it on the next request' },
    restart: { type: 'string', value: 'never|always|on-failure', help: 'restart policy' },
    rm: { type: 'boolean', help: 'delete the instance when it stops' },
    follow: { type: 'boolean', short: 'f', help: 'print its logs until it stops or Ctrl-C' },
    'dry-run': { type: 'boolean', help: 'print the create request instead of sending it' },
    'build-arg': { type: 'string', multiple: true, value: 'K=V', help: 'a Dockerfile ARG value when building DIR' },
  },
  notes: 'Prints one key/value block per instance (three with --replicas 2), with the boot time.',
} as const satisfies CommandHelp;

export const runSpec: CliCommandSpec = {
  name: 'run',
  summary: RUN_HELP.summary,
  help: RUN_HELP,
};
