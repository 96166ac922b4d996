import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, lstat, mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile, chmod, utimes, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { BuildCache } from '../cache/cache.js';
import { buildDockerfile, BuildStepError, type BuildOptions } from './executor.js';

/** A busybox root filesystem to stand in for a base image (a named build context). */
async function busyboxRoot(dir: string): Promise<string> {
  const root = join(dir, 'busybox-root');
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'etc'), { recursive: true });
  await mkdir(join(root, 'tmp'), { recursive: true });
  await chmod(join(root, 'tmp'), 0o1777);
  await copyFile('/usr/bin/busybox', join(root, 'bin/busybox'));
  await chmod(join(root, 'bin/busybox'), 0o755);
  for (const app of ['sh', 'ls', 'cat', 'id', 'echo', 'env', 'pwd', 'touch', 'mkdir', 'stat']) await symlink('busybox', join(root, 'bin', app));
  await writeFile(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1234:2345:app:/home/app:/bin/sh\n');
  await writeFile(join(root, 'etc/group'), 'root:x:0:\nappgrp:x:2345:\nother:x:777:\n');
  return root;
}

async function fixture(): Promise<{ dir: string; ctx: string; base: string; cache: BuildCache; done: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-exec-'));
  const ctx = join(dir, 'ctx');
  await mkdir(ctx);
  const base = await busyboxRoot(dir);
  const cache = new BuildCache(join(dir, 'cache'));
  return { dir, ctx, base, cache, done: () => rm(dir, { recursive: true, force: true }) };
}

function opts(f: { ctx: string; base: string; cache: BuildCache }, dockerfile: string, extra: Partial<BuildOptions> = {}): BuildOptions {
  return { contextDir: f.ctx, dockerfile, cache: f.cache, buildContexts: { busybox: f.base }, ...extra };
}

test('COPY semantics: dir contents, file into dir, wildcards, modes and mtimes kept, links inside dirs kept, named link followed', async () => {
  const f = await fixture();
  try {
    await mkdir(join(f.ctx, 'app/sub'), { recursive: true });
    await writeFile(join(f.ctx, 'app/run.sh'), 'echo run');
    await chmod(join(f.ctx, 'app/run.sh'), 0o4750);
    await utimes(join(f.ctx, 'app/run.sh'), 1000, 1000);
    await writeFile(join(f.ctx, 'app/sub/data.txt'), 'data');
    await symlink('sub/data.txt', join(f.ctx, 'app/link'));
    await writeFile(join(f.ctx, 'a.py'), 'a');
    await writeFile(join(f.ctx, 'b.py'), 'b');
    await writeFile(join(f.ctx, '.hidden.py'), 'h');
    await writeFile(join(f.ctx, 'secret.py'), 's');
    await writeFile(join(f.ctx, '.dockerignore'), 'secret.py\n');
    await symlink('a.py', join(f.ctx, 'alias'));
    const res = await buildDockerfile(
      opts(f, ['FROM scratch', 'COPY app /opt/app', 'COPY *.py /py/', 'COPY alias /single', 'COPY app/run.sh /bin2/'].join('\n')),
    );
    const r = res.rootfs;
    assert.equal(await readFile(join(r, 'opt/app/sub/data.txt'), 'utf8'), 'data');
    assert.equal(await readlink(join(r, 'opt/app/link')), 'sub/data.txt', 'link inside a copied dir stays a link');
    const st = await lstat(join(r, 'opt/app/run.sh'));
    assert.equal(st.mode & 0o7777, 0o4750, 'setuid and mode kept');
    assert.equal(st.mtimeMs, 1000_000, 'mtime kept');
    assert.equal(st.uid, 0);
    assert.deepEqual((await readdir(join(r, 'py'))).sort(), ['.hidden.py', 'a.py', 'b.py'], '* matches dotfiles; .dockerignore applies');
    assert.ok((await lstat(join(r, 'single'))).isFile(), 'a link named as a source is followed');
    assert.equal(await readFile(join(r, 'single'), 'utf8'), 'a');
    assert.equal(await readFile(join(r, 'bin2/run.sh'), 'utf8'), 'echo run');
  } finally {
    await f.done();
  }
});

test('COPY --chown by name resolves in the destination stage, --chmod applies, WORKDIR is created and relative', async () => {
  const f = await fixture();
  try {
    await writeFile(join(f.ctx, 'f.txt'), 'x');
    const res = await buildDockerfile(
      opts(f, ['FROM busybox', 'WORKDIR /srv', 'WORKDIR app/v1', 'COPY --chown=app:other --chmod=640 f.txt ./', 'COPY --chown=app f.txt /g.txt'].join('\n')),
    );
    const st = await lstat(join(res.rootfs, 'srv/app/v1/f.txt'));
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1234, 777, 0o640]);
    const g = await lstat(join(res.rootfs, 'g.txt'));
    assert.deepEqual([g.uid, g.gid], [1234, 2345]);
    assert.equal(res.config.workingDir, '/srv/app/v1');
    await assert.rejects(
      () => buildDockerfile(opts(f, 'FROM busybox\nCOPY --chown=nobody f.txt /x\n', { noCache: true })),
      (e: unknown) => e instanceof BuildStepError && /unknown user "nobody"/.test(e.message) && e.line === 2,
    );
  } finally {
    await f.done();
  }
});

test('RUN: explicit env (ENV + ARG, nothing of the builder), USER, WORKDIR, exit codes reported with the line', async () => {
  const f = await fixture();
  try {
    process.env.UKC_SHOULD_NOT_LEAK = 'leak';
    const df = [
      'FROM busybox',
      'ARG GREETING=hi',
      'ENV MODE=prod',
      'WORKDIR /work',
      'RUN env > /work/env.txt && pwd > /work/pwd.txt && ls /proc/self >/dev/null && echo ok > /dev/null',
      'USER app',
      'RUN id -u > /tmp/uid.txt',
    ].join('\n');
    const res = await buildDockerfile(opts(f, df, { buildArgs: { GREETING: 'hello' } }));
    const env = await readFile(join(res.rootfs, 'work/env.txt'), 'utf8');
    assert.match(env, /^MODE=prod$/m);
    assert.match(env, /^GREETING=hello$/m);
    assert.doesNotMatch(env, /UKC_SHOULD_NOT_LEAK/);
    assert.equal(await readFile(join(res.rootfs, 'work/pwd.txt'), 'utf8'), '/work\n');
    assert.equal(await readFile(join(res.rootfs, 'tmp/uid.txt'), 'utf8'), '1234\n');
    assert.ok(!res.config.env.some((e) => e.startsWith('GREETING=')), 'ARGs stay out of the image config');
    const top = await readdir(res.rootfs);
    assert.ok(!top.includes('proc') && !top.includes('dev'), `no mount stubs left in the rootfs: ${top.join(' ')}`);
    await assert.rejects(
      () => buildDockerfile(opts(f, 'FROM busybox\n\nRUN exit 3\n')),
      (e: unknown) => e instanceof BuildStepError && e.line === 3 && e.exitCode === 3 && /exit code 3/.test(e.message),
    );
    await assert.rejects(
      () => buildDockerfile(opts(f, 'FROM busybox\nRUN no-such-tool --x\n')),
      (e: unknown) => e instanceof BuildStepError && e.exitCode === 127 && /command not found/.test(e.message),
    );
  } finally {
    delete process.env.UKC_SHOULD_NOT_LEAK;
    await f.done();
  }
});

test('cache: an unchanged rebuild executes nothing; a changed source re-runs from that step on; --no-cache runs all', async () => {
  const f = await fixture();
  try {
    await writeFile(join(f.ctx, 'a.txt'), 'one');
    const df = 'FROM busybox\nRUN echo first > /f1\nCOPY a.txt /a.txt\nRUN cat /a.txt > /copy.txt\nENV X=1\n';
    const first = await buildDockerfile(opts(f, df));
    assert.equal(first.runStepsExecuted, 2);
    const lines: string[] = [];
    const second = await buildDockerfile(opts(f, df, { log: (l) => lines.push(l) }));
    assert.equal(second.runStepsExecuted, 0);
    assert.equal(second.stepsRun, 0);
    assert.equal(second.stepsCached, 3, 'RUN, COPY, RUN (ENV only changes the config)');
    assert.equal(lines.filter((l) => l.endsWith('CACHED')).length, 3);
    assert.equal(second.key, first.key);
    await utimes(join(f.ctx, 'a.txt'), 5, 5);
    assert.equal((await buildDockerfile(opts(f, df))).runStepsExecuted, 0, 'mtime alone does not bust the cache');
    await writeFile(join(f.ctx, 'a.txt'), 'two');
    const third = await buildDockerfile(opts(f, df));
    assert.equal(third.runStepsExecuted, 1, 'only the RUN after the changed COPY');
    assert.equal(await readFile(join(third.rootfs, 'copy.txt'), 'utf8'), 'two');
    assert.equal((await buildDockerfile(opts(f, df, { noCache: true }))).runStepsExecuted, 2);
  } finally {
    await f.done();
  }
});

test('multi-stage: COPY --from resolves paths inside the source stage (links included), --target, FROM stage', async () => {
  const f = await fixture();
  try {
    const df = [
      'FROM busybox AS build',
      'RUN mkdir -p /usr/lib && echo lib > /usr/lib/libx.so && ln -s usr/lib /lib && ln -s / /rootlink',
      'FROM scratch AS final',
      'COPY --from=build /lib/libx.so /lib/',
      'COPY --from=0 /rootlink/etc/passwd /passwd',
      'FROM final AS extra',
      'COPY --from=build /bin/busybox /bin/',
    ].join('\n');
    const res = await buildDockerfile(opts(f, df, { target: 'final' }));
    assert.equal(await readFile(join(res.rootfs, 'lib/libx.so'), 'utf8'), 'lib\n');
    assert.match(await readFile(join(res.rootfs, 'passwd'), 'utf8'), /^app:x:1234/m, 'the stage\'s own /etc/passwd, not the host\'s');
    assert.deepEqual((await readdir(res.rootfs)).sort(), ['lib', 'passwd']);
    const all = await buildDockerfile(opts(f, df));
    assert.deepEqual((await readdir(all.rootfs)).sort(), ['bin', 'lib', 'passwd']);
  } finally {
    await f.done();
  }
});

test('ADD extracts local tar.gz, tar.xz and tar.bz2 archives; plain files are copied', async () => {
  const f = await fixture();
  try {
    const src = join(f.dir, 'arc');
    await mkdir(join(src, 'pkg'), { recursive: true });
    await writeFile(join(src, 'pkg/hello.txt'), 'hello');
    for (const [flag, name] of [['-z', 'a.tar.gz'], ['-J', 'a.tar.xz'], ['-j', 'a.tar.bz2']] as const) {
      const r = spawnSync('tar', ['-C', src, flag, '-cf', join(f.ctx, name), 'pkg']);
      assert.equal(r.status, 0);
    }
    await writeFile(join(f.ctx, 'plain.txt'), 'plain');
    const res = await buildDockerfile(
      opts(f, 'FROM scratch\nADD a.tar.gz /gz/\nADD a.tar.xz /xz\nADD a.tar.bz2 /bz/\nADD plain.txt /p.txt\n'),
    );
    for (const d of ['gz', 'xz', 'bz']) assert.equal(await readFile(join(res.rootfs, d, 'pkg/hello.txt'), 'utf8'), 'hello');
    assert.equal(await readFile(join(res.rootfs, 'p.txt'), 'utf8'), 'plain');
  } finally {
    await f.done();
  }
});

test('ADD of a gzip bomb fails fast at the byte limit', async () => {
  const f = await fixture();
  try {
    // 64 MiB of zeros compress to ~64 KiB; the limit is 1 MiB.
    const tarred = spawnSync('sh', ['-c', `head -c 67108864 /dev/zero > ${join(f.dir, 'zero')} && tar -C ${f.dir} -cf - zero`], { maxBuffer: 80 * 1024 * 1024 });
    await writeFile(join(f.ctx, 'bomb.tar.gz'), gzipSync(tarred.stdout));
    await assert.rejects(
      () => buildDockerfile(opts(f, 'FROM scratch\nADD bomb.tar.gz /x/\n', { archiveLimits: { maxBytes: 1024 * 1024 } })),
      /expands past the limit of 1048576 bytes/,
    );
  } finally {
    await f.done();
  }
});

test('heredocs: COPY <<EOF writes a file, RUN <<EOF with #! runs as a script; global ARG in FROM; config from the plan', async () => {
  const f = await fixture();
  try {
    const df = [
      'ARG BASE=busybox',
      'FROM ${BASE} AS b',
      'ENV NAME=world',
      'COPY <<EOF /greeting.txt',
      'hello ${NAME}',
      'EOF',
      'RUN <<EOF',
      '#!/bin/sh',
      'cat /greeting.txt > /out.txt',
      'echo "$0" >> /out.txt',
      'EOF',
      'ENTRYPOINT ["/bin/sh"]',
      'CMD ["-c", "cat /out.txt"]',
    ].join('\n');
    const res = await buildDockerfile(opts(f, df));
    assert.equal(await readFile(join(res.rootfs, 'greeting.txt'), 'utf8'), 'hello world\n');
    const out = await readFile(join(res.rootfs, 'out.txt'), 'utf8');
    assert.match(out, /^hello world\n\/\.ukc-run-/);
    assert.ok(!(await readdir(res.rootfs)).some((n) => n.startsWith('.ukc-run-')), 'the script file is removed');
    assert.deepEqual(res.config.entrypoint, ['/bin/sh']);
    assert.deepEqual(res.config.cmd, ['-c', 'cat /out.txt']);
    assert.ok(res.config.env.includes('NAME=world'));
  } finally {
    await f.done();
  }
});
