import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyEventLine, launcherArgs, type LauncherEvents } from './launcher.js';

test('launcherArgs maps the spec to flags and ends with -- argv', () => {
  const a = launcherArgs({
    rootfs: '/r',
    overlay: { lower: ['/l1', '/l2'], upper: '/u', work: '/w' },
    argv: ['sh', '-c', 'echo --proc'],
    env: ['A=1'],
    uid: 1000,
    gid: 1000,
    network: { netnsPath: '/run/netns/x' },
    binds: [{ source: '/etc/hosts', target: '/etc/hosts', readonly: true }],
    proc: false,
    graceMs: 5,
  });
  assert.deepEqual(a, [
    '--rootfs', '/r', '--lower', '/l1', '--lower', '/l2', '--upper', '/u', '--work', '/w',
    '--netns', '/run/netns/x', '--uid', '1000', '--gid', '1000', '--env', 'A=1', '--dev',
    '--bind', '/etc/hosts:/etc/hosts:ro', '--grace-ms', '5', '--', 'sh', '-c', 'echo --proc',
  ]);
});

test('launcherArgs rejects what the launcher cannot express', () => {
  assert.throws(() => launcherArgs({ rootfs: '/r', argv: [] }), /argv/);
  assert.throws(() => launcherArgs({ rootfs: '/r', argv: ['x'], env: ['NOEQUALS'] }), /K=V/);
  assert.throws(() => launcherArgs({ rootfs: '/r', argv: ['x'], binds: [{ source: '/a:b', target: '/c' }] }), /":"/);
});

test('applyEventLine parses every event kind', () => {
  const s: LauncherEvents = { stubs: [] };
  assert.equal(applyEventLine(s, 'pid 42'), 'pid');
  assert.equal(applyEventLine(s, 'stub /etc/resolv.conf 1 2'), 'stub');
  assert.equal(applyEventLine(s, 'exec 123456789012345'), 'exec');
  assert.equal(applyEventLine(s, 'cleanup ok'), 'cleanup');
  assert.equal(applyEventLine(s, 'exit signal 9'), 'exit');
  assert.equal(applyEventLine(s, 'something-new 1'), undefined);
  assert.deepEqual(s, { pid: 42, stubs: ['/etc/resolv.conf'], execAtNs: 123456789012345n, cleanup: true, exit: { code: null, signal: 'SIGKILL' } });
  applyEventLine(s, 'error exec 2 No such file or directory: foo');
  assert.deepEqual(s.error, { stage: 'exec', errno: 2, code: 'ENOENT', message: 'No such file or directory: foo' });
  applyEventLine(s, 'exit code 3');
  assert.deepEqual(s.exit, { code: 3, signal: null });
});

test('a warm launcher gets its supervisor options on the command line and the rest as NUL-terminated stdin', async () => {
  const { specPayload, warmLauncherArgs } = await import('./launcher.js');
  assert.deepEqual(warmLauncherArgs({ graceMs: 7, trace: true }), ['--spec-stdin', '--grace-ms', '7', '--trace']);
  const payload = specPayload({ rootfs: '/r', argv: ['sh', '-c', 'echo hi'], env: ['A=1'], network: 'new' });
  const parts = payload.toString('utf8').split('\0');
  assert.equal(parts.pop(), '', 'every argument is NUL-terminated');
  assert.deepEqual(parts, ['--rootfs', '/r', '--new-netns', '--env', 'A=1', '--proc', '--dev', '--', 'sh', '-c', 'echo hi']);
  assert.throws(() => specPayload({ rootfs: '/r', argv: ['x'], graceMs: 5 }), /warmLauncherArgs/);
  assert.throws(() => specPayload({ rootfs: '/r', argv: ['a\0b'] }), /NUL/);
});
