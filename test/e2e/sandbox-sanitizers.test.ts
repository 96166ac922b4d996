// The launcher's tests once more against an AddressSanitizer + UndefinedBehaviorSanitizer
// build of the launcher (issue 10 item 7). The sanitizer runtime does not work in a static
// binary, so this build is dynamic; it is made in a temp dir and handed to the tests through
// UKC_SANDBOX_LAUNCHER. A sanitizer report makes the launcher exit with code 86 (its report on
// its stderr), which the tests see as a wrong exit status: any finding fails this test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IS_ROOT } from './sandbox-fixtures.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The launcher tests run under the sanitizers (compiled, in dist). */
const SUITES = ['sandbox-isolation', 'sandbox-mounts', 'sandbox-cgroups', 'sandbox-runstep', 'sandbox-launcher-hardening'];

function compilerHasAsan(): boolean {
  const r = spawnSync(process.env['CC'] ?? 'cc', ['-print-file-name=libasan.so'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim().startsWith('/');
}

test('launcher tests pass against an ASan/UBSan build of the launcher', { skip: (!IS_ROOT && 'needs root') || (!compilerHasAsan() && 'the C compiler has no libasan') }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-asan-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // Options baked into the binary: the node starts the launcher with an empty environment.
  // Leak checking is off: the launcher's few allocations live until it exits or execs.
  const opts = join(dir, 'sanitizer-options.c');
  writeFileSync(opts, [
    'const char *__asan_default_options(void) { return "exitcode=86:detect_leaks=0:abort_on_error=0"; }',
    'const char *__ubsan_default_options(void) { return "exitcode=86:halt_on_error=1:print_stacktrace=1"; }',
    '',
  ].join('\n'));
  const build = spawnSync('sh', ['scripts/build-native.sh'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: {
      ...process.env,
      UKC_NATIVE_OUT: dir,
      UKC_NATIVE_FLAGS: `-g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -Wno-missing-prototypes ${opts}`,
    },
  });
  assert.equal(build.status, 0, build.stderr);
  const launcher = join(dir, 'ukc-sandbox');
  assert.ok(existsSync(launcher));
  const nm = spawnSync('sh', ['-c', `nm ${launcher} | grep -c __asan_report`], { encoding: 'utf8' });
  assert.ok(Number(nm.stdout.trim()) > 0, 'the launcher is instrumented');

  const files = SUITES.map((s) => join(ROOT, 'dist', 'test', 'e2e', `${s}.test.js`));
  for (const f of files) assert.ok(existsSync(f), `${f} (run npm run build)`);
  // Without NODE_TEST_CONTEXT, or the inner runner would report to this one instead of printing TAP.
  const env: NodeJS.ProcessEnv = { ...process.env, UKC_SANDBOX_LAUNCHER: launcher };
  delete env['NODE_TEST_CONTEXT'];
  const run = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=tap', ...files], {
    cwd: ROOT,
    encoding: 'utf8',
    env,
    maxBuffer: 64 * 1024 * 1024,
    timeout: 10 * 60_000,
  });
  const out = `${run.stdout}\n${run.stderr}`;
  assert.doesNotMatch(out, /AddressSanitizer|runtime error:|UndefinedBehaviorSanitizer/, out.slice(-4000));
  assert.equal(run.status, 0, out.slice(-4000));
  assert.match(run.stdout, /# fail 0/);
  assert.doesNotMatch(run.stdout, /# pass 0\b/);
});
