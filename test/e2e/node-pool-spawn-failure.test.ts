// A launcher pool whose launcher cannot be started (not built, wrong path) must fail its
// slots and signal nobody. Starting `ukcd node` without a built launcher was once seen to
// SIGKILL the shell that started it (a kill of a whole process group); the cause was not
// pinned down (this test passes with and without the pid > 0 guards added beside it), so this
// is a guard against the scenario, not a reproduction. The pool runs in a child process that
// leads its own process group, so a group kill shows as that child killed, not as this test
// runner dying.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const POOL_MODULE = fileURLToPath(new URL('../../src/node/runtime/micro/pool.js', import.meta.url));

test('a pool whose launcher cannot be spawned reports it and kills no process group', { timeout: 60_000 }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root (the pool makes cgroups)');
  const dir = mkdtempSync(join(tmpdir(), 'ukc-pool-fail-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = `
    import { LauncherPool } from ${JSON.stringify(POOL_MODULE)};
    const pool = new LauncherPool({
      runsDir: ${JSON.stringify(join(dir, 'runs'))},
      launcherPath: ${JSON.stringify(join(dir, 'no-such-launcher'))},
      size: 2, readyTimeoutMs: 2000, graceMs: 1000, trace: false, consoleMaxBytes: 65536,
      cgroupOptions: () => ({ parent: 'ukc-test-poolfail-${process.pid}' }),
    });
    await pool.init();
    await pool.filled();
    await new Promise((r) => setTimeout(r, 300));
    await pool.close();
    console.log('ready=' + pool.ready + ' error=' + (pool.lastError ? pool.lastError.message : 'none'));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr.on('data', (c: Buffer) => (out += c.toString()));
  const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.on('exit', (c, s) => resolve([c, s])));
  assert.equal(signal, null, `the pool's process was killed by ${signal}:\n${out}`);
  assert.equal(code, 0, out);
  assert.match(out, /ready=0 error=/);
  assert.doesNotMatch(out, /error=none/);
});
