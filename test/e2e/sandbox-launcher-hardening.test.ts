// End-to-end: the launcher refuses what it cannot do safely (issue 10 item 7): garbage
// numbers are errors (never uid/gid 0), a given --event-fd must be open, and an overlay
// option string too long for its buffer fails cleanly instead of overflowing it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_LAUNCHER_PATH, spawnSandbox } from '../../src/sandbox/index.js';
import { IS_ROOT, PATH_ENV, makeBusyboxRoot } from './sandbox-fixtures.js';

function launch(args: string[]): { status: number | null; stderr: string } {
  const r = spawnSync(DEFAULT_LAUNCHER_PATH, args, { encoding: 'utf8', env: {}, stdio: ['ignore', 'pipe', 'pipe'] });
  return { status: r.status, stderr: r.stderr };
}

test('launcher: checked numbers and fds', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const { dir, root } = makeBusyboxRoot();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const base = ['--rootfs', root, '--event-fd', '-1'];
  const cases: [string[], RegExp][] = [
    [['--groups', '1,x'], /--groups needs/],
    [['--groups', 'abc'], /--groups needs/],
    [['--groups', '1,,2'], /--groups needs/],
    [['--groups', ''], /--groups needs/],
    [['--groups', '-1'], /--groups needs/],
    [['--groups', '99999999999'], /--groups needs/],
    [['--uid', '12ab'], /--uid needs/],
    [['--uid', '-1'], /--uid needs/],
    [['--uid', ' 5'], /--uid needs/],
    [['--gid', '4294967295'], /--gid needs/],
    [['--grace-ms', '1e3'], /--grace-ms needs/],
  ];
  for (const [extra, message] of cases) {
    const r = launch([...base, ...extra, '--', '/bin/true']);
    assert.equal(r.status, 125, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, extra.join(' '));
  }
  const r = launch(['--rootfs', root, '--event-fd', '57', '--', '/bin/true']);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /--event-fd is not an open file descriptor/);
  const bad = launch(['--rootfs', root, '--event-fd', '3x', '--', '/bin/true']);
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /--event-fd needs/);

  // Valid lists still work: the groups reach the app.
  const ok = spawnSync(DEFAULT_LAUNCHER_PATH, ['--rootfs', root, '--event-fd', '-1', '--uid', '1000', '--gid', '1000', '--groups', '5,7', '--env', PATH_ENV, '--', 'id', '-G'], { encoding: 'utf8', env: {} });
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(ok.stdout.trim().split(/\s+/).sort(), ['1000', '5', '7']);
});

test('launcher: an overlay option string longer than its buffer fails cleanly', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const { dir, root } = makeBusyboxRoot();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  // 60 lower dirs with 200-character names: about 12 KB of options, past the 8 KiB buffer.
  const lowers: string[] = [];
  for (let i = 0; i < 60; i++) {
    const l = join(dir, `${String(i).padStart(3, '0')}-${'l'.repeat(196)}`);
    mkdirSync(l);
    lowers.push(l);
  }
  for (const sub of ['upper', 'work', 'mnt']) mkdirSync(join(dir, sub));
  const p = spawnSandbox({
    rootfs: join(dir, 'mnt'),
    overlay: { lower: [root, ...lowers], upper: join(dir, 'upper'), work: join(dir, 'work') },
    env: [PATH_ENV],
    argv: ['true'],
  });
  const exit = await p.exited;
  assert.equal(exit.code, 125);
  assert.equal(exit.error?.code, 'ENAMETOOLONG', JSON.stringify(exit.error));
  assert.match(exit.error?.message ?? '', /overlay options too long/);
});
