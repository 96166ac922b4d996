// Hostile inputs to the build executor (security-cases.md rows 1, 2, 3, 10): each
// must fail with a clear error or stay inside its root, and leave host files alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, mkdtemp, readFile, rm, symlink, writeFile, chmod, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildCache } from '../cache/cache.js';
import { buildDockerfile, BuildStepError } from './executor.js';
import { isPrivateAddress } from './download.js';

/** A tiny explicit ustar writer: lets the tests put any name in a header. */
function tarEntry(name: string, body: string, type: '0' | '2' | '5' = '0', linkname = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${Buffer.byteLength(body).toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write(linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257);
  h.write('00', 263);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const data = Buffer.alloc(Math.ceil(Buffer.byteLength(body) / 512) * 512);
  data.write(body);
  return Buffer.concat([h, data]);
}

function tarOf(...entries: Buffer[]): Buffer {
  return Buffer.concat([...entries, Buffer.alloc(1024)]);
}

async function setup(): Promise<{ dir: string; ctx: string; base: string; cache: BuildCache; outside: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-buildsec-'));
  const ctx = join(dir, 'ctx');
  const base = join(dir, 'base');
  await mkdir(ctx);
  await mkdir(join(base, 'bin'), { recursive: true });
  await mkdir(join(base, 'etc'), { recursive: true });
  await copyFile('/usr/bin/busybox', join(base, 'bin/busybox'));
  await chmod(join(base, 'bin/busybox'), 0o755);
  for (const app of ['sh', 'ls', 'cat', 'echo', 'pwd']) await symlink('busybox', join(base, 'bin', app));
  await writeFile(join(base, 'etc/passwd'), 'root:x:0:0:stage-root:/root:/bin/sh\n');
  // A seeded file next to (outside) every root: it must stay untouched.
  const outside = join(dir, 'unbroken');
  await writeFile(outside, 'original');
  return { dir, ctx, base, cache: new BuildCache(join(dir, 'cache')), outside };
}

test('row 2: a context symlink to / copies from the context, never the host', async () => {
  const s = await setup();
  try {
    await symlink('/', join(s.ctx, 'link'));
    await writeFile(join(s.ctx, 'own.txt'), 'context file');
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: 'FROM scratch\nCOPY link/etc/hostname /h\n', cache: s.cache }),
      (e: unknown) => e instanceof BuildStepError && /not found in the build context/.test(e.message),
    );
    const res = await buildDockerfile({ contextDir: s.ctx, dockerfile: 'FROM scratch\nCOPY link/own.txt /own.txt\nCOPY ../../../../etc/passwd* /p/\n', cache: s.cache }).catch((e: Error) => e);
    assert.ok(res instanceof Error, 'the ../ pattern finds nothing: the context root is the top');
    const ok = await buildDockerfile({ contextDir: s.ctx, dockerfile: 'FROM scratch\nCOPY link/own.txt /own.txt\n', cache: s.cache });
    assert.equal(await readFile(join(ok.rootfs, 'own.txt'), 'utf8'), 'context file');
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
});

test('row 2: COPY --from paths and links resolve inside the source stage', async () => {
  const s = await setup();
  try {
    const df = [
      'FROM base AS b',
      'RUN ln -s / /escape && ln -s ../../../../../../etc /up',
      'FROM scratch',
      'COPY --from=b /escape/etc/passwd /a',
      'COPY --from=b /up/passwd /b',
    ].join('\n');
    const res = await buildDockerfile({ contextDir: s.ctx, dockerfile: df, cache: s.cache, buildContexts: { base: s.base } });
    // A source path climbing above the stage root is refused outright.
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: `${df}\nCOPY --from=b /../../../../etc/passwd /c\n`, cache: s.cache, buildContexts: { base: s.base } }),
      (e: unknown) => e instanceof BuildStepError && e.line === 6 && /outside/.test(e.message),
    );
    for (const f of ['a', 'b']) assert.equal(await readFile(join(res.rootfs, f), 'utf8'), 'root:x:0:0:stage-root:/root:/bin/sh\n', f);
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
});

test('row 2 (runc CVE-2024-21626): WORKDIR /proc/self/fd/N cannot become a RUN working directory', async () => {
  const s = await setup();
  try {
    for (const wd of ['/proc/self/fd/7', '/proc/self/cwd']) {
      await assert.rejects(
        () => buildDockerfile({ contextDir: s.ctx, dockerfile: `FROM base\nWORKDIR ${wd}\nRUN ls > /listing\n`, cache: s.cache, buildContexts: { base: s.base } }),
        (e: unknown) => e instanceof BuildStepError && e.line === 3 && /RUN refuses/.test(e.message),
      );
    }
    // Through a link planted by an earlier step, too.
    await assert.rejects(
      () =>
        buildDockerfile({
          contextDir: s.ctx,
          dockerfile: 'FROM base\nRUN ln -s /proc/self/fd /fds\nWORKDIR /fds/5\nRUN pwd\n',
          cache: s.cache,
          buildContexts: { base: s.base },
        }),
      (e: unknown) => e instanceof BuildStepError && /RUN refuses/.test(e.message),
    );
    assert.equal(await readFile(s.outside, 'utf8'), 'original');
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
});

test('rows 1 and 2: ADD archives with ../ names, or links then writes through them, stay inside', async () => {
  const s = await setup();
  try {
    await writeFile(join(s.ctx, 'climb.tar'), tarOf(tarEntry('../../../unbroken', 'pwned')));
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: 'FROM scratch\nADD climb.tar /x/\n', cache: s.cache }),
      (e: unknown) => e instanceof BuildStepError && /\.\./.test(e.message),
    );
    await writeFile(join(s.ctx, 'linkwrite.tar'), tarOf(tarEntry('evil', '', '2', '/'), tarEntry('evil/unbroken', 'pwned'), tarEntry('abs', '', '2', '../../..'), tarEntry('abs/unbroken2', 'pwned')));
    const res = await buildDockerfile({ contextDir: s.ctx, dockerfile: 'FROM scratch\nADD linkwrite.tar /x/\n', cache: s.cache });
    assert.equal(await readFile(s.outside, 'utf8'), 'original');
    await assert.rejects(() => stat(join(s.dir, 'unbroken2')));
    // The write through `evil -> /` landed at the top of the extraction root.
    assert.equal(await readFile(join(res.rootfs, 'x/unbroken'), 'utf8'), 'pwned');
    assert.equal(await readFile(join(res.rootfs, 'x/unbroken2'), 'utf8'), 'pwned');
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
});

test('row 3: an ADD archive with too many entries or too deep paths fails with the limit named', async () => {
  const s = await setup();
  try {
    const many = tarOf(...Array.from({ length: 50 }, (_, i) => tarEntry(`f${i}`, 'x')));
    await writeFile(join(s.ctx, 'many.tar'), many);
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: 'FROM scratch\nADD many.tar /m/\n', cache: s.cache, archiveLimits: { maxEntries: 10 } }),
      /10/,
    );
    await writeFile(join(s.ctx, 'deep.tar'), tarOf(tarEntry(`${'d/'.repeat(40)}f`, 'x')));
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: 'FROM scratch\nADD deep.tar /d/\n', cache: s.cache, archiveLimits: { maxDepth: 16 } }),
      /16/,
    );
  } finally {
    await rm(s.dir, { recursive: true, force: true });
  }
});

test('row 10: ADD refuses URLs on loopback and private addresses unless allowed', async () => {
  const s = await setup();
  const server = createServer((_req, res) => res.end('internal secret'));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  try {
    const df = `FROM scratch\nADD http://127.0.0.1:${port}/secret /s\n`;
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: df, cache: s.cache }),
      (e: unknown) => e instanceof BuildStepError && /internal address 127\.0\.0\.1; refused/.test(e.message),
    );
    const ok = await buildDockerfile({ contextDir: s.ctx, dockerfile: df, cache: s.cache, urlPolicy: { allowPrivate: true } });
    assert.equal(await readFile(join(ok.rootfs, 's'), 'utf8'), 'internal secret');
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: df, cache: s.cache, noCache: true, urlPolicy: { allowPrivate: true, allowHosts: ['example.org'] } }),
      /not in the allowed list/,
    );
    for (const ip of ['10.1.2.3', '192.168.0.1', '172.20.0.1', '169.254.169.254', '::1', 'fd00::1', '::ffff:127.0.0.1', '0.0.0.0']) assert.ok(isPrivateAddress(ip), ip);
    // IPv4 hidden in IPv6 forms, as the URL parser writes them, and other special-purpose ranges.
    for (const ip of ['::ffff:7f00:1', '::FFFF:7F00:1', '::ffff:a00:1', '64:ff9b::7f00:1', '::7f00:1', '198.18.0.1', '100.64.0.1', 'fe80::1', 'ff02::1', '::', 'not-an-ip']) {
      assert.ok(isPrivateAddress(ip), ip);
    }
    for (const ip of ['8.8.8.8', '2001:4860::8888', '172.32.0.1', '::ffff:808:808']) assert.ok(!isPrivateAddress(ip), ip);
    // The bracketed mapped form in a URL is refused like the plain one.
    const mapped = `FROM scratch\nADD http://[::ffff:127.0.0.1]:${port}/secret /s\n`;
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: mapped, cache: s.cache, noCache: true }),
      (e: unknown) => e instanceof BuildStepError && /internal address/.test(e.message),
    );
    // A host name resolves once; the connection goes to the checked address (Node 20 asks lookup for all addresses).
    const named = `FROM scratch\nADD http://localhost:${port}/secret /n\n`;
    await assert.rejects(
      () => buildDockerfile({ contextDir: s.ctx, dockerfile: named, cache: s.cache, noCache: true }),
      (e: unknown) => e instanceof BuildStepError && /localhost resolves to the internal address/.test(e.message),
    );
    const byName = await buildDockerfile({ contextDir: s.ctx, dockerfile: named, cache: s.cache, noCache: true, urlPolicy: { allowPrivate: true } });
    assert.equal(await readFile(join(byName.rootfs, 'n'), 'utf8'), 'internal secret');
  } finally {
    server.close();
    await rm(s.dir, { recursive: true, force: true });
  }
});
