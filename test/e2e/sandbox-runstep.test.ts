// End-to-end: runStep as the builder uses it for RUN steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runStep } from '../../src/sandbox/index.js';
import { IS_ROOT, makeBusyboxRoot } from './sandbox-fixtures.js';

test('runStep', { skip: !IS_ROOT && 'needs root' }, async (t) => {
  const { dir, root } = makeBusyboxRoot();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const hosts = join(dir, 'hosts');
  writeFileSync(hosts, '127.0.0.1 localhost builder-host\n');

  await t.test('changes land in the root; no mount stubs remain; parent mtime kept', async () => {
    const before = statSync(root).mtimeMs;
    const r = await runStep({
      rootfs: root,
      argv: ['sh', '-c', 'cat /etc/hosts; ls /dev/null /proc/self >/dev/null && mkdir -p /bin/made && echo hi > /bin/made/file'],
      env: ['PATH=/bin'],
      hosts,
    });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    assert.match(r.stdout.toString(), /builder-host/);
    assert.equal(readFileSync(join(root, 'bin/made/file'), 'utf8'), 'hi\n');
    assert.deepEqual(readdirSync(root).sort(), ['bin']);
    assert.equal(statSync(root).mtimeMs, before);
  });

  await t.test('an existing /etc keeps its files and gets no stubs', async () => {
    mkdirSync(join(root, 'etc'));
    writeFileSync(join(root, 'etc', 'os-release'), 'ID=test\n');
    const r = await runStep({ rootfs: root, argv: ['cat', '/etc/resolv.conf'], env: ['PATH=/bin'], resolvConf: hosts, hosts: null });
    assert.equal(r.exitCode, 0);
    assert.deepEqual(readdirSync(join(root, 'etc')), ['os-release']);
    rmSync(join(root, 'etc'), { recursive: true });
  });

  await t.test('env inside is exactly what was passed', async () => {
    process.env.UKC_LEAK_CANARY = 'leaked';
    t.after(() => delete process.env.UKC_LEAK_CANARY);
    const r = await runStep({ rootfs: root, argv: ['env'], env: ['PATH=/bin', 'HOME=/root', 'X=y'] });
    assert.deepEqual(r.stdout.toString().trim().split('\n').sort(), ['HOME=/root', 'PATH=/bin', 'X=y']);
  });

  await t.test('USER and WORKDIR apply', async () => {
    mkdirSync(join(root, 'work'), { mode: 0o777 });
    const r = await runStep({ rootfs: root, argv: ['sh', '-c', 'id -u; id -g; pwd'], env: ['PATH=/bin'], uid: 1000, gid: 1001, cwd: '/work' });
    rmSync(join(root, 'work'), { recursive: true });
    assert.deepEqual(r.stdout.toString().trim().split('\n'), ['1000', '1001', '/work']);
  });

  await t.test('command not found is 127 with a clear failure', async () => {
    const r = await runStep({ rootfs: root, argv: ['apt-get', 'install', 'x'], env: ['PATH=/usr/bin:/bin'] });
    assert.equal(r.exitCode, 127);
    assert.equal(r.commandNotFound, true);
    assert.equal(r.failure, 'command not found: apt-get');
    assert.deepEqual(readdirSync(root).sort(), ['bin']);
  });

  await t.test('timeout kills the whole group and still leaves no stubs', async () => {
    const t0 = Date.now();
    const r = await runStep({ rootfs: root, argv: ['sh', '-c', 'trap "" TERM; sleep 30 & sleep 30'], env: ['PATH=/bin'], timeoutMs: 200 });
    assert.equal(r.timedOut, true);
    assert.ok(Date.now() - t0 < 10_000);
    assert.notEqual(r.exitCode, 0);
    assert.deepEqual(readdirSync(root).sort(), ['bin']);
  });

  await t.test('output is capped', async () => {
    const r = await runStep({ rootfs: root, argv: ['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo 0123456789; i=$((i+1)); done'], env: ['PATH=/bin'], outputLimitBytes: 1000 });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout.length, 1000);
    assert.equal(r.stdoutTruncated, true);
  });

  await t.test('network none: only lo', async () => {
    const r = await runStep({ rootfs: root, argv: ['ip', '-o', 'link'], env: ['PATH=/bin'], network: 'none' });
    assert.equal(r.exitCode, 0, r.stderr.toString());
    const links = r.stdout.toString().trim().split('\n');
    assert.equal(links.length, 1);
    assert.match(links[0] ?? '', /lo:.*UP/);
  });
});
