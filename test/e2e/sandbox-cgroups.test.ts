// End-to-end: cgroup limits enforced on sandboxes (memory OOM, pids, cpu quota), stats and cleanup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCgroup, detectCgroupLayout, removeCgroupParent, spawnSandbox } from '../../src/sandbox/index.js';
import { IS_ROOT, PATH_ENV, makeBusyboxRoot } from './sandbox-fixtures.js';

// Touches every page it allocates so the memory is really charged; stops after 1 GiB.
const ALLOCATOR_C = `
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
int main(void) {
  for (int i = 0; i < 1024; i++) {
    char *p = malloc(1 << 20);
    if (!p) return 3;
    memset(p, 1, 1 << 20);
  }
  write(1, "survived\\n", 9);
  return 0;
}
`;

test('sandbox cgroups', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const { dir, root } = makeBusyboxRoot();
  const parent = `/ukc-test-${randomUUID()}`;
  t.after(() => {
    removeCgroupParent(parent);
    rmSync(dir, { recursive: true, force: true });
  });
  const layout = detectCgroupLayout();
  t.diagnostic(`cgroup layout: v${layout.version}`);

  await t.test('memory limit: allocating past it is OOM-killed and reported', async () => {
    writeFileSync(join(dir, 'alloc.c'), ALLOCATOR_C);
    execFileSync('cc', ['-O1', '-static', '-o', join(root, 'bin', 'alloc'), join(dir, 'alloc.c')]);
    const cg = createCgroup('oom', { memoryBytes: 32 * 1024 * 1024, pidsMax: 16 }, { parent });
    t.after(() => cg.destroy());
    assert.equal(cg.readLimits().memoryBytes, 32 * 1024 * 1024);
    const p = spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['/bin/alloc'], cgroup: cg });
    let out = '';
    p.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    const exit = await p.exited;
    assert.equal(exit.signal, 'SIGKILL');
    assert.equal(exit.oomKilled, true);
    assert.doesNotMatch(out, /survived/);
    // A run that stays below the limit is not reported as OOM.
    const ok = await spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['true'], cgroup: cg }).exited;
    assert.equal(ok.code, 0);
    assert.equal(ok.oomKilled, false);
  });

  await t.test('pids limit stops a fork bomb', async () => {
    const cg = createCgroup('pids', { pidsMax: 20, memoryBytes: 256 * 1024 * 1024 }, { parent });
    t.after(() => cg.destroy());
    // Bounded: at most 200 background sleeps; with the limit, fork fails long before (ash then gives up).
    const p = spawnSandbox({
      rootfs: root,
      env: [PATH_ENV],
      cgroup: cg,
      argv: ['sh', '-c', 'n=0; while [ $n -lt 200 ]; do sleep 5 & n=$((n+1)); done; echo all-forked'],
    });
    let out = '';
    let err = '';
    p.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
    p.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
    await p.started;
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, cg.stats().pids)), 5);
    const exit = await p.exited;
    clearInterval(sampler);
    assert.doesNotMatch(out, /all-forked/);
    assert.match(err, /can't fork|Resource temporarily unavailable/i);
    assert.notEqual(exit.code, 0);
    assert.ok(peak <= 20, `peak ${peak} pids`);
    assert.equal(cg.procs().length, 0, 'sandbox exit must leave no process in the cgroup');
  });

  await t.test('cpu quota is applied and usage is measured', async () => {
    const cg = createCgroup('cpu', { vcpus: 0.5 }, { parent });
    t.after(() => cg.destroy());
    const d = cg.joinDirs;
    if (layout.version === 2) {
      assert.equal(execFileSync('cat', [join(d[0] as string, 'cpu.max')], { encoding: 'utf8' }).trim(), '50000 100000');
    } else {
      assert.equal(execFileSync('cat', [join(d[1] as string, 'cpu.cfs_quota_us')], { encoding: 'utf8' }).trim(), '50000');
      assert.equal(execFileSync('cat', [join(d[1] as string, 'cpu.cfs_period_us')], { encoding: 'utf8' }).trim(), '100000');
    }
    assert.equal(cg.readLimits().vcpus, 0.5);
    // Spin for about a second of wall time: at half a core, usage stays near half the wall time.
    const t0 = Date.now();
    const exit = await spawnSandbox({
      rootfs: root,
      env: [PATH_ENV],
      cgroup: cg,
      argv: ['sh', '-c', 'i=0; while [ $i -lt 600000 ]; do i=$((i+1)); done'],
    }).exited;
    const wallMs = Date.now() - t0;
    assert.equal(exit.code, 0);
    const usageMs = cg.stats().cpuUsageUs / 1000;
    t.diagnostic(`cpu usage ${usageMs.toFixed(0)} ms over ${wallMs} ms wall at 0.5 vcpu`);
    assert.ok(usageMs > 0);
    // CFS grants 50 ms per 100 ms period; a run spanning n period boundaries may touch n + 1
    // periods and use each period's full quota, so the bound counts periods, not wall time.
    const periods = Math.floor(wallMs / 100) + 2;
    assert.ok(usageMs <= periods * 50, `usage ${usageMs} ms exceeds ${periods} periods of 50 ms in ${wallMs} ms`);
    assert.ok(wallMs >= 400, `the spin ran ${wallMs} ms: too short to show a quota`);
  });

  await t.test('destroy kills what is left and removes the directories', async () => {
    const cg = createCgroup('left', { memoryBytes: 64 * 1024 * 1024 }, { parent });
    const p = spawnSandbox({ rootfs: root, env: [PATH_ENV], argv: ['sleep', '60'], cgroup: cg, stdout: 'ignore', stderr: 'ignore' });
    await p.started;
    assert.ok(cg.procs().length >= 2, 'init and app are in the cgroup');
    assert.ok(cg.stats().memoryBytes > 0);
    await cg.destroy();
    const exit = await p.exited;
    assert.equal(exit.signal, 'SIGKILL');
    for (const d of cg.joinDirs) assert.equal(existsSync(d), false);
  });
});
