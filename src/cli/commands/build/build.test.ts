import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runCommandLine, type CommandContext } from '../../../util/command.js';
import { cliCommands } from '../../commands.js';

function context(cwd: string, env: NodeJS.ProcessEnv = {}): { ctx: CommandContext; out: () => string; err: () => string } {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let o = '';
  let e = '';
  stdout.on('data', (d: Buffer) => (o += d.toString()));
  stderr.on('data', (d: Buffer) => (e += d.toString()));
  return { ctx: { cwd, env, stdout, stderr, signal: new AbortController().signal }, out: () => o, err: () => e };
}

test('unikraft build: usage errors exit 2 with a message', async () => {
  const c = context(tmpdir());
  assert.equal(await runCommandLine('unikraft', cliCommands, ['build', '.'], c.ctx), 2);
  assert.match(c.err(), /--output .* is required/);
  const d = context(tmpdir());
  assert.equal(await runCommandLine('unikraft', cliCommands, ['build', '.', '--output', 'x.oci.tar', '--build-arg', 'NOEQUALS'], d.ctx), 2);
  assert.match(d.err(), /--build-arg wants KEY=VALUE/);
});

test('unikraft build: a Dockerfile alone → kernel-less .oci.tar; steps printed, CACHED on rebuild; failures name the line', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-cli-build-'));
  try {
    const proj = join(dir, 'hello.world');
    await mkdir(proj);
    await copyFile('/usr/bin/busybox', join(proj, 'busybox'));
    await chmod(join(proj, 'busybox'), 0o755);
    await writeFile(join(proj, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "touch", "/made"]\nCMD ["/bin/busybox", "echo", "hi"]\n');
    const env = { UKC_CACHE_DIR: join(dir, 'cache'), SOURCE_DATE_EPOCH: '1700000000' };
    const first = context(dir, env);
    assert.equal(await runCommandLine('unikraft', cliCommands, ['build', 'hello.world', '--output', './out.oci.tar', '--rootfs-format', 'cpio'], first.ctx), 0, first.err());
    assert.match(first.out(), /RUN \["\/bin\/busybox", "touch", "\/made"\]\n/);
    assert.match(first.out(), /image has no kernel layer/);
    assert.match(first.out(), /^image helloworld sha256:[a-f0-9]{64}/m);
    assert.ok((await readFile(join(dir, 'out.oci.tar'))).length > 0);
    const second = context(dir, env);
    assert.equal(await runCommandLine('unikraft', cliCommands, ['build', 'hello.world', '--output', './out.oci.tar', '--rootfs-format', 'cpio'], second.ctx), 0);
    assert.equal((second.out().match(/ {2}CACHED$/gm) ?? []).length, 3, second.out());
    assert.match(second.out(), /steps: 0 run, 2 cached \(0 RUN executed\)/);
    assert.equal(first.out().match(/sha256:[a-f0-9]{64}/)?.[0], second.out().match(/sha256:[a-f0-9]{64}/)?.[0]);

    await writeFile(join(proj, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\n\nRUN ["/bin/busybox", "false"]\n');
    const bad = context(dir, env);
    assert.equal(await runCommandLine('unikraft', cliCommands, ['build', 'hello.world', '--output', './bad.oci.tar'], bad.ctx), 1);
    assert.match(bad.err(), /Dockerfile:4: RUN .*exit code 1/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
