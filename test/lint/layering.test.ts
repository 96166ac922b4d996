// The lint rules that keep the layering bite: deliberate violations, linted through ESLint's
// own API with the project's eslint.config.js, are reported; the allowed forms are not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ESLint } from 'eslint';

const root = join(import.meta.dirname, '..', '..', '..');

/**
 * Lints `code` as the file `file` of a scratch project laid out like this one (its own
 * src/ and tsconfig.json, so the type-aware rules see a real program), with the project's
 * own eslint.config.js.
 */
async function lint(file: string, code: string): Promise<string[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-lint-'));
  try {
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', target: 'ES2022', noEmit: true, types: [] }, include: ['src/**/*.ts'] }));
    for (const area of ['oci', 'node', 'util']) {
      mkdirSync(join(dir, 'src', area), { recursive: true });
      writeFileSync(join(dir, 'src', area, 'index.ts'), 'export const x = 1;\n');
    }
    writeFileSync(join(dir, 'src', 'oci', 'digest.ts'), 'export const sha256 = 1;\n');
    writeFileSync(join(dir, 'src', 'node', 'server.ts'), 'export const s = 1;\n');
    mkdirSync(dirname(join(dir, file)), { recursive: true });
    writeFileSync(join(dir, file), code);
    const eslint = new ESLint({ cwd: dir, overrideConfigFile: join(root, 'eslint.config.js') });
    const [result] = await eslint.lintFiles([join(dir, file)]);
    return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('an import reaching into another folder instead of its index.ts is reported', async () => {
  const messages = await lint('src/node/x-probe.ts', "import { sha256 } from '../oci/digest.js';\nexport const f = sha256;\n");
  assert.ok(
    messages.some((m) => m.startsWith('ukc/layering:') && m.includes("'../oci/index.js'")),
    `expected a layering report, got: ${messages.join('; ')}`,
  );
});

test('a forbidden arrow (the CLI importing the node) is reported even through the index', async () => {
  const messages = await lint('src/cli/x-probe.ts', "export * from '../node/index.js';\n");
  assert.ok(messages.some((m) => m.startsWith('ukc/layering:') && m.includes('src/cli may not import src/node')), messages.join('; '));
});

test('util imports no area', async () => {
  const messages = await lint('src/util/x-probe.ts', "export { parseReference } from '../oci/index.js';\n");
  assert.ok(messages.some((m) => m.includes('src/util may not import src/oci')), messages.join('; '));
});

test('the allowed forms pass: an allowed arrow through the index, a file in the same folder, util', async () => {
  const messages = await lint(
    'src/node/x-probe.ts',
    "import * as oci from '../oci/index.js';\nimport * as u from '../util/index.js';\nexport const a = [oci, u];\n",
  );
  assert.deepEqual(messages.filter((m) => m.startsWith('ukc/layering')), []);
});

test('test files may reach into any folder', async () => {
  const messages = await lint('src/cli/x-probe.test.ts', "export * from '../node/server.js';\n");
  assert.deepEqual(messages.filter((m) => m.startsWith('ukc/layering')), []);
});

test('a floating promise is reported', async () => {
  const messages = await lint(
    'src/util/x-probe.ts',
    'async function f(): Promise<void> {}\nexport function g(): void {\n  f();\n}\n',
  );
  assert.ok(messages.some((m) => m.startsWith('@typescript-eslint/no-floating-promises')), messages.join('; '));
});
