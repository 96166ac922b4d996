#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with Node's own test runner.
// Arguments filter by substring of the path: `node scripts/run-tests.mjs registry`.
// UKC_TEST_CONCURRENCY overrides how many files run at once (default: 2, the CI cores).
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');

function walk(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = walk(dist, [])
  .filter((f) => filters.length === 0 || filters.some((s) => relative(dist, f).includes(s)))
  .sort();
if (files.length === 0) {
  console.error('run-tests: no test files matched (did `npm run build` run?)');
  process.exit(1);
}
const concurrency = process.env.UKC_TEST_CONCURRENCY ?? '2';
const res = spawnSync(
  process.execPath,
  ['--test', `--test-concurrency=${concurrency}`, '--test-timeout=600000', '--test-reporter=spec', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(res.status ?? 1);
