import { readFileSync } from 'node:fs';
import type { Command } from './command.js';
import { parseOptions } from './usage.js';

/** The package version, read once from package.json next to dist/. */
export function packageVersion(): string {
  const url = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export const versionCommand: Command = {
  name: 'version',
  aliases: ['ver'],
  summary: 'print the version',
  help: { synopsis: '', summary: 'print the version', options: {} },
  async run(args, ctx) {
    parseOptions(`version`, { synopsis: '', summary: 'print the version', options: {} }, args);
    ctx.stdout.write(`${packageVersion()}\n`);
    return 0;
  },
};
