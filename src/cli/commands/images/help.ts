/** The help of `unikraft images`: pure data, loaded on every start (see ../../command.ts); the implementation is index.ts, loaded when the command runs. */
import type { CommandHelp } from '../../../util/index.js';
import type { CliCommandSpec } from '../../command.js';
import { IMPORT_HELP } from '../images-import/help.js';

export const WHERE = {
  central: { type: 'boolean', help: 'only the central registry' },
  local: { type: 'boolean', help: "only the selected metro's node-local registry" },
} as const;

export const IMAGES_HELP = {
  synopsis: 'list|get|delete|import ...',
  summary: 'list, inspect and delete images (central and node-local); import a root filesystem',
  options: {},
  subcommands: {
    list: { synopsis: '[--all] [--central|--local]', summary: 'list your images (REF DIGEST SIZE WHERE)', options: { all: { type: 'boolean', help: "also official images and (for root) everyone's" }, ...WHERE } },
    get: { synopsis: 'NAME[:TAG] [--central|--local]', summary: 'show one image', options: WHERE },
    delete: { synopsis: 'NAME[:TAG]... [--central|--local]', summary: 'delete an image tag (every tag without one), in both registries', options: WHERE },
    import: IMPORT_HELP,
  },
} as const satisfies CommandHelp;

export const imagesSpec: CliCommandSpec = {
  name: 'images',
  aliases: ['image', 'img', 'imgs'],
  summary: IMAGES_HELP.summary,
  help: IMAGES_HELP,
};
