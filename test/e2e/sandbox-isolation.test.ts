// End-to-end: namespaces and supervision of spawnSandbox with a real busybox rootfs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSandbox, type SandboxSpec } from '../../src/sandbox/index.js';
import { IS_ROOT, PATH_ENV, makeBusyboxRoot } from './sandbox-fixtures.js';

async function runCapture(spec: SandboxSpec): Promise<{ out: string; code: number | null }> {
  const p = spawnSandbox({ ...spec, stdout: 'pipe', stderr: 'pipe' });
  let out = '';
  p.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  p.stderr?.resume();
  const exit = await p.exited;
  return { out, code: exit.code };
}

test('sandbox isolation', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const { dir, root } = makeBusyboxRoot();
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  await t.test('sees only its own pids', async () => {
    const { out, code } = await runCapture({ rootfs: root, env: [PATH_ENV], argv: ['ps', '-o', 'pid,comm'] });
    assert.equal(code, 0);
    const pids = out.trim().split('\n').slice(1).map((l) => Number(l.trim().split(/\s+/)[0]));
    assert.deepEqual(pids, [1, 2], out);
  });

  await t.test('hostname is set', async () => {
    const { out } = await runCapture({ rootfs: root, env: [PATH_ENV], hostname: 'box-7', argv: ['hostname'] });
    assert.equal(out.trim(), 'box-7');
  });

  await t.test('host paths are not visible', async () => {
    const marker = mkdtempSync(join(tmpdir(), 'ukc-marker-'));
    writeFileSync(join(marker, 'secret'), 'x');
    t.after(() => rmSync(marker, { recursive: true, force: true }));
    const { out, code } = await runCapture({
      rootfs: root,
      env: [PATH_ENV],
      argv: ['sh', '-c', `cat ${marker}/secret; ls ${tmpdir()} /; cat /proc/mounts`],
    });
    assert.equal(code, 0);
    assert.doesNotMatch(out, /ukc-marker/);
    assert.doesNotMatch(out, /^x$/m);
    // Only our own mounts: the root, /proc (+ hardening), /dev, /dev/shm.
    assert.doesNotMatch(out, /cgroup|^\S+ \/sys /m);
  });

  await t.test('two sandboxes cannot read each other', async () => {
    const other = makeBusyboxRoot();
    t.after(() => rmSync(other.dir, { recursive: true, force: true }));
    writeFileSync(join(other.root, 'private.txt'), 'other-secret');
    const a = spawnSandbox({ rootfs: other.root, env: [PATH_ENV], argv: ['sleep', '5'], stdout: 'ignore', stderr: 'ignore' });
    const started = await a.started;
    const { out } = await runCapture({
      rootfs: root,
      env: [PATH_ENV],
      argv: ['sh', '-c', `cat /private.txt ${other.root}/private.txt /proc/${started.pid}/root/private.txt 2>&1; ls /proc`],
    });
    assert.doesNotMatch(out, /other-secret/);
    const exit = await a.kill();
    assert.equal(exit.signal, 'SIGKILL');
  });

  await t.test('env is exactly what was passed', async () => {
    const { out } = await runCapture({ rootfs: root, env: ['PATH=/bin', 'A=1', 'B=two words'], argv: ['env'] });
    assert.deepEqual(out.trim().split('\n').sort(), ['A=1', 'B=two words', 'PATH=/bin']);
  });

  await t.test('missing program: 127 with ENOENT at the exec stage', async () => {
    const p = spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['no-such-program'] });
    await assert.rejects(p.started);
    const exit = await p.exited;
    assert.equal(exit.code, 127);
    assert.equal(exit.error?.stage, 'exec');
    assert.equal(exit.error?.code, 'ENOENT');
    assert.match(exit.error?.message ?? '', /no-such-program/);
  });

  await t.test('bad cwd is a setup error (125), not a crash', async () => {
    const exit = await spawnSandbox({ rootfs: root, env: [PATH_ENV], cwd: '/nope', argv: ['true'] }).exited;
    assert.equal(exit.code, 125);
    assert.equal(exit.error?.stage, 'setup');
    assert.equal(exit.error?.code, 'ENOENT');
  });

  await t.test('stop() ends an app that ignores SIGTERM after the grace; exit codes pass through', async () => {
    const p = spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['sh', '-c', 'trap "" TERM; echo ready; while true; do sleep 1; done'], stderr: 'ignore' });
    const s = await p.started;
    // Wait until the trap is installed, or the SIGTERM could arrive first.
    await new Promise<void>((resolve) => p.stdout?.once('data', () => resolve()));
    p.stdout?.resume();
    const t0 = Date.now();
    const exit = await p.stop(300);
    assert.equal(exit.signal, 'SIGKILL');
    assert.ok(Date.now() - t0 < 5000);
    assert.equal(existsSync(`/proc/${s.pid}`), false);
    const polite = spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['sleep', '30'], stdout: 'ignore', stderr: 'ignore' });
    await polite.started;
    assert.equal((await polite.stop(5000)).signal, 'SIGTERM');
    assert.equal((await spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['sh', '-c', 'exit 42'] }).exited).code, 42);
  });

  await t.test('read-only root and stdout to a log fd', async () => {
    const { openSync, closeSync, readFileSync } = await import('node:fs');
    const log = join(dir, 'app.log');
    const fd = openSync(log, 'w');
    const p = spawnSandbox({ rootfs: root, env: [PATH_ENV], readonlyRoot: true, tmpfs: ['/tmp'], stdout: fd, stderr: fd, argv: ['sh', '-c', 'touch /x || echo ro-ok; touch /tmp/y && echo tmp-ok'] });
    closeSync(fd);
    assert.equal((await p.exited).code, 0);
    assert.match(readFileSync(log, 'utf8'), /ro-ok[\s\S]*tmp-ok/);
    assert.equal(existsSync(join(root, 'x')), false);
  });

  await t.test('boot time p50 over 50 sequential starts (reported, not asserted)', async () => {
    const boots: number[] = [];
    for (let i = 0; i < 50; i++) {
      const p = spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['true'], stdout: 'ignore', stderr: 'ignore' });
      boots.push(Number((await p.started).bootNs) / 1e6);
      await p.exited;
    }
    boots.sort((a, b) => a - b);
    const p50 = boots[25] ?? NaN;
    t.diagnostic(`sandbox boot (spawn -> execve) p50 ${p50.toFixed(2)} ms, p90 ${(boots[45] ?? NaN).toFixed(2)} ms over 50 starts`);
    console.log(`sandbox boot p50 ${p50.toFixed(2)} ms p90 ${(boots[45] ?? NaN).toFixed(2)} ms (n=50)`);
    assert.ok(p50 > 0);
  });

  // Every stub the launcher made (no removeStubs here) is at the usual mount points only.
  assert.ok(readdirSync(root).every((n) => ['bin', 'proc', 'dev', 'tmp', 'private.txt'].includes(n)));
});
