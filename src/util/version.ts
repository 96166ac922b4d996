import { readFileSync } from 'node:fs';
import type { Command } from './command.js';

/** The package version, read once from package.json next to dist/. */
export function packageVersion(): string {
  const url = new URL('../../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(url, 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : 'unknown';
}

export const versionCommand: Command = {
  name: 'version',
  summary: 'print the version',
  async run(_args, ctx) {
    ctx.stdout.write(`${packageVersion()}\n`);
    return 0;
  },
};
