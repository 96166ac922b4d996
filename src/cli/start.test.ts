// Fast start (issue 14 item 8): `unikraft --help`, `<command> --help` and `version` load the
// command table only — not the client, oci, the builder, yaml or pino — and `instances list`
// loads no builder. Checked in a child process that reports every module it loaded (ESM through
// a load hook, CommonJS from require's cache at exit). Timings: bench/cli/.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = fileURLToPath(new URL('../../../bin/unikraft.js', import.meta.url));

const hook = `export async function load(url, context, next) { if (!url.startsWith('node:')) process.stderr.write('LOADED ' + url + '\\n'); return next(url, context); }`;
const preload = [
  `import { register, createRequire } from 'node:module';`,
  `register('data:text/javascript,' + encodeURIComponent(${JSON.stringify(hook)}));`,
  `const cache = createRequire('/').cache;`,
  `process.on('exit', () => { for (const f of Object.keys(cache)) process.stderr.write('LOADED ' + f + '\\n'); });`,
].join('\n');

function loadedBy(args: string[]): string[] {
  const home = mkdtempSync(join(tmpdir(), 'ukc-cli-start-'));
  try {
    const env = { PATH: process.env.PATH, HOME: home, UNIKRAFT_CONFIG: join(home, 'none.yaml'), UKC_METRO: 'http://127.0.0.1:1' };
    const r = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(preload)}`, bin, ...args], { env, encoding: 'utf8', timeout: 30_000 });
    assert.ok(r.status === 0 || r.status === 4, `unikraft ${args.join(' ')}: exit ${r.status}\n${r.stderr}`);
    return r.stderr.split('\n').filter((l) => l.startsWith('LOADED ')).map((l) => l.slice('LOADED '.length));
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

/** Areas and packages a help or version answer never needs. */
const HEAVY = [/\/dist\/src\/(client|oci|builder|sandbox|node|registry|store|log)\//, /\/dist\/src\/cli\/commands\/[^/]+\/index\.js$/, /\/dist\/src\/cli\/(runtime|errors|views)\.js$/, /node_modules\/(yaml|pino|better-sqlite3|fzstd)\//];

for (const args of [['--help'], ['instances', '--help'], ['images', 'import', '--help'], ['version']]) {
  test(`unikraft ${args.join(' ')} loads only the command table`, () => {
    const loaded = loadedBy(args);
    assert.ok(loaded.some((f) => f.includes('/dist/src/cli/commands.js')), `the hook saw nothing:\n${loaded.join('\n')}`);
    const heavy = loaded.filter((f) => HEAVY.some((re) => re.test(f)));
    assert.deepEqual(heavy, [], `unikraft ${args.join(' ')} loaded:\n${heavy.join('\n')}`);
  });
}

test('unikraft instances list loads its command and the client, not the builder or yaml (no config file to read)', () => {
  const loaded = loadedBy(['instances', 'list']);
  assert.ok(loaded.some((f) => f.endsWith('/dist/src/cli/commands/instances/index.js')));
  assert.ok(loaded.some((f) => f.endsWith('/dist/src/client/index.js')));
  const heavy = loaded.filter((f) => /\/dist\/src\/(builder|sandbox)\/|node_modules\/(yaml|fzstd|pino)\//.test(f));
  assert.deepEqual(heavy, [], heavy.join('\n'));
});
