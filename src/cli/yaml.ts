/**
 * The `yaml` package, loaded on first use. It costs ~30 ms to load, and only
 * commands that read the config file or print `-o yaml` need it: `--help` and
 * `version` must not pay for it (issue 14 item 8). `require` keeps the callers
 * synchronous; yaml's Node entry is CommonJS, the same module `import` would load.
 */
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let loaded: typeof Yaml | undefined;

export function yaml(): typeof Yaml {
  loaded ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return loaded;
}
