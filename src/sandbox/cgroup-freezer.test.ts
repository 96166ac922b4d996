import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CgroupFreezer, freezerMountPoint } from './cgroup-freezer.js';
import { createCgroup, detectCgroupLayout, removeCgroupParent } from './cgroups.js';

const isRoot = process.getuid?.() === 0;

/** utime + stime of a process, in clock ticks (10 ms). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

/** CPU ticks a process used over `ms`. */
async function cpuOver(pid: number, ms: number): Promise<number> {
  const t0 = cpuTicks(pid);
  await sleep(ms);
  return cpuTicks(pid) - t0;
}

function busyLoop(): ChildProcess {
  return spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' });
}

/** Removes the freezer hierarchy's copy of a test parent (removeCgroupParent knows only the limit controllers). */
function removeFreezerParent(parent: string): void {
  const layout = detectCgroupLayout();
  const root = layout.version === 2 ? layout.mountPoint : freezerMountPoint(readFileSync('/proc/self/mountinfo', 'utf8'));
  if (root === undefined) return;
  try {
    rmdirSync(join(root, parent));
  } catch {
    // never made, or already gone
  }
}

test('freezerMountPoint finds the v1 freezer hierarchy in mountinfo', () => {
  const info = [
    '30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu',
    '36 25 0:32 / /sys/fs/cgroup/freezer rw,nosuid shared:15 - cgroup cgroup rw,freezer',
  ].join('\n');
  assert.equal(freezerMountPoint(info), '/sys/fs/cgroup/freezer');
  assert.equal(freezerMountPoint(info.split('\n')[0]!), undefined);
});

test('a frozen busy loop uses no CPU; thawed, it runs again', { timeout: 20_000 }, async (t) => {
  if (!isRoot) return t.skip('needs root');
  const parent = `/ukc-test-${randomUUID()}`;
  const child = busyLoop();
  const freezer = CgroupFreezer.create('busy', { parent });
  try {
    freezer.add(child.pid!);
    assert.deepEqual(freezer.procs(), [child.pid]);
    assert.ok((await cpuOver(child.pid!, 400)) >= 2, 'the loop runs before freezing');
    await freezer.freeze();
    assert.equal(freezer.state(), 'frozen');
    await sleep(50); // let a tick that was already counting settle
    assert.ok((await cpuOver(child.pid!, 500)) <= 1, 'no CPU while frozen');
    freezer.thaw();
    assert.equal(freezer.state(), 'thawed');
    assert.ok((await cpuOver(child.pid!, 400)) >= 2, 'the loop runs again after thawing');
  } finally {
    freezer.thaw();
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    await freezer.remove();
    removeFreezerParent(parent);
  }
});

test('forCgroup freezes every process of a sandbox cgroup, also ones forked before the freeze', { timeout: 20_000 }, async (t) => {
  if (!isRoot) return t.skip('needs root');
  const parent = `/ukc-test-${randomUUID()}`;
  const cg = createCgroup('sandbox', {}, { parent });
  // A shell that forks two busy loops, joined to the sandbox cgroup (as the launcher joins its init).
  const child = spawn('sh', ['-c', 'read _; (while :; do :; done) & (while :; do :; done) & wait'], { stdio: ['pipe', 'ignore', 'ignore'] });
  for (const d of cg.joinDirs) writeFileSync(join(d, 'cgroup.procs'), String(child.pid));
  child.stdin!.end('go\n');
  const freezer = CgroupFreezer.forCgroup(cg, { parent });
  try {
    let procs: number[] = [];
    for (let i = 0; i < 100 && procs.length < 3; i++) {
      await sleep(10);
      procs = cg.procs();
    }
    assert.equal(procs.length, 3, 'shell and two loops in the cgroup');
    const busy = (): number => cg.stats().cpuUsageUs;
    const u0 = busy();
    await sleep(300);
    assert.ok(busy() - u0 > 20_000, 'the loops run before freezing');
    await freezer.freeze();
    assert.equal(freezer.state(), 'frozen');
    assert.deepEqual(new Set(freezer.procs()), new Set(procs));
    await sleep(20);
    const f0 = busy();
    await sleep(400);
    assert.ok(busy() - f0 < 5_000, `no CPU while frozen (used ${busy() - f0} µs)`);
    freezer.thaw();
    const t0 = busy();
    await sleep(300);
    assert.ok(busy() - t0 > 20_000, 'the loops run again after thawing');
  } finally {
    freezer.thaw();
    await cg.destroy();
    await freezer.remove();
    removeCgroupParent(parent);
    removeFreezerParent(parent);
  }
});
