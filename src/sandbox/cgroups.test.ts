import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseCgroupLayout, unescapeMountPath } from './cgroups.js';

// This machine's shape: v1 controllers plus an empty v2 beside them.
const HYBRID = [
  '30 25 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu',
  '31 25 0:27 / /sys/fs/cgroup/cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpuacct',
  '32 25 0:28 / /sys/fs/cgroup/memory rw,relatime shared:11 - cgroup cgroup rw,memory',
  '33 25 0:29 / /sys/fs/cgroup/pids rw,relatime shared:12 - cgroup cgroup rw,pids',
  '34 25 0:30 / /sys/fs/cgroup/unified rw,relatime shared:13 - cgroup2 cgroup2 rw',
].join('\n');

test('hybrid layout without memory in v2 chooses v1', () => {
  const l = chooseCgroupLayout(HYBRID, () => 'hugetlb');
  assert.deepEqual(l, {
    version: 1,
    mountPoints: { memory: '/sys/fs/cgroup/memory', cpu: '/sys/fs/cgroup/cpu', cpuacct: '/sys/fs/cgroup/cpuacct', pids: '/sys/fs/cgroup/pids' },
  });
});

test('v2 with memory wins', () => {
  assert.deepEqual(chooseCgroupLayout(HYBRID, () => 'cpuset cpu io memory pids'), { version: 2, mountPoint: '/sys/fs/cgroup/unified' });
});

test('combined cpu,cpuacct mounts are understood; missing controllers are an error', () => {
  const combined = '30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n' + HYBRID.split('\n').slice(2).join('\n');
  const l = chooseCgroupLayout(combined, () => '');
  assert.equal(l.version === 1 && l.mountPoints.cpuacct, '/sys/fs/cgroup/cpu,cpuacct');
  assert.throws(() => chooseCgroupLayout(HYBRID.split('\n').slice(0, 2).join('\n'), () => ''), /no usable cgroup layout/);
});

test('mountinfo octal escapes are decoded', () => {
  assert.equal(unescapeMountPath('/a\\040b\\134c'), '/a b\\c');
});
