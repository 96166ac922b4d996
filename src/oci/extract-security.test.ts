/**
 * Hostile archives against extractTar / applyLayers (security-cases.md rows 1, 2, 3).
 * Archives are built by the tiny explicit tar writer below, not by tar.ts, so the
 * tests can craft entries a well-behaved writer refuses to make.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readFile, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { execFileSync } from 'node:child_process';
import { ExtractError, ExtractLimitError, ExtractPathError, applyLayers, extractTar, type ExtractOptions } from './extract.js';

// --- a tiny explicit tar writer -------------------------------------------------

interface RawEntry {
  name: string;
  /** '0' file, '1' hardlink, '2' symlink, '5' directory, 'L' GNU long name, anything else as given. */
  flag?: string;
  linkname?: string;
  data?: string;
  /** Declared size when no data follows here (bombs stream the body separately). */
  size?: number;
  mode?: number;
}

function rawHeader(e: RawEntry): Buffer {
  const h = Buffer.alloc(512);
  const size = e.size ?? Buffer.byteLength(e.data ?? '');
  h.write(e.name, 0, 100, 'utf8');
  h.write((e.mode ?? 0o644).toString(8).padStart(7, '0') + '\0', 100, 'ascii');
  h.write('0000000\0', 108, 'ascii');
  h.write('0000000\0', 116, 'ascii');
  h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'ascii');
  h.write('00000000000\0', 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(e.flag ?? '0', 156, 'ascii');
  h.write(e.linkname ?? '', 157, 100, 'utf8');
  h.write('ustar\x0000', 257, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

function pad(n: number): Buffer {
  return Buffer.alloc((512 - (n % 512)) % 512);
}

function rawEntry(e: RawEntry): Buffer {
  const parts: Buffer[] = [];
  if (Buffer.byteLength(e.name) > 100) {
    const long = Buffer.from(e.name + '\0');
    parts.push(rawHeader({ name: '././@LongLink', flag: 'L', size: long.length }), long, pad(long.length));
  }
  parts.push(rawHeader(e));
  if (e.data !== undefined) parts.push(Buffer.from(e.data), pad(Buffer.byteLength(e.data)));
  return Buffer.concat(parts);
}

function rawTar(list: RawEntry[]): Buffer {
  return Buffer.concat([...list.map(rawEntry), Buffer.alloc(1024)]);
}

// --- the scene: a root with a sentinel beside it and host files to watch ----------

interface Scene {
  base: string;
  root: string;
  check: () => Promise<void>;
}

async function fingerprint(path: string): Promise<string> {
  const st = await stat(path);
  const data = await readFile(path);
  return `${createHash('sha256').update(data).digest('hex')}:${st.mtimeMs}:${st.mode}:${st.nlink}`;
}

async function scene(t: { after: (fn: () => Promise<void>) => void }): Promise<Scene> {
  const base = await mkdtemp(join(tmpdir(), 'ukc-hostile-'));
  t.after(() => rm(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  await mkdir(root);
  // root/../unbroken: the file an escape would overwrite first; root/etc/unbroken: must stay as seeded.
  await writeFile(join(base, 'unbroken'), 'original');
  await utimes(join(base, 'unbroken'), 1000, 1000);
  await mkdir(join(base, 'outside'), { mode: 0o700 });
  await utimes(join(base, 'outside'), 2000, 2000);
  await mkdir(join(root, 'etc'));
  await writeFile(join(root, 'etc/unbroken'), 'seeded');
  const watched = [join(base, 'unbroken'), '/etc/passwd', '/etc/hostname'];
  const before = await Promise.all(watched.map(fingerprint));
  const outsideBefore = await stat(join(base, 'outside'));
  return {
    base,
    root,
    check: async () => {
      assert.deepEqual(await Promise.all(watched.map(fingerprint)), before, 'host files untouched');
      assert.deepEqual((await readdir(base)).sort(), ['outside', 'root', 'unbroken'], 'nothing new beside the root');
      assert.deepEqual(await readdir(join(base, 'outside')), []);
      const o = await stat(join(base, 'outside'));
      assert.equal(o.mode, outsideBefore.mode, 'outside dir mode untouched');
      assert.equal(o.mtimeMs, outsideBefore.mtimeMs, 'outside dir mtime untouched');
      assert.equal(await readFile(join(root, 'etc/unbroken'), 'utf8'), 'seeded');
      await assert.rejects(lstat('/evil'), { code: 'ENOENT' });
    },
  };
}

// --- row 1: path traversal -------------------------------------------------------

test('row 1: tar path traversal is refused or confined', async (t) => {
  const cases: Array<{ name: string; tar: RawEntry[]; error?: new (...a: never[]) => Error; expect?: (root: string) => Promise<void> }> = [
    { name: '../evil', tar: [{ name: '../evil', data: 'x' }], error: ExtractPathError },
    { name: '../unbroken', tar: [{ name: '../unbroken', data: 'pwned' }], error: ExtractPathError },
    { name: 'a/../../evil', tar: [{ name: 'a/../../evil', data: 'x' }], error: ExtractPathError },
    { name: './../../evil', tar: [{ name: './../../evil', data: 'x' }], error: ExtractPathError },
    { name: 'dir entry ../outside', tar: [{ name: '../outside/', flag: '5', mode: 0o777 }], error: ExtractPathError },
    { name: 'hardlink to ../unbroken', tar: [{ name: 'h', flag: '1', linkname: '../unbroken' }], error: ExtractPathError },
    {
      name: '/abs is taken relative to the root (Docker strips the leading /)',
      tar: [{ name: '/evil', data: 'inside' }],
      expect: async (root) => assert.equal(await readFile(join(root, 'evil'), 'utf8'), 'inside'),
    },
    {
      name: 'a/../b stays inside and is cleaned',
      tar: [{ name: 'a/../b', data: 'b' }],
      expect: async (root) => assert.equal(await readFile(join(root, 'b'), 'utf8'), 'b'),
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t2) => {
      const s = await scene(t2);
      const run = extractTar(s.root, Readable.from([rawTar(c.tar)]));
      if (c.error) await assert.rejects(run, c.error);
      else await run;
      if (c.expect) await c.expect(s.root);
      await s.check();
    });
  }
});

// --- row 2: symlink and hardlink escapes -----------------------------------------

test('row 2: symlink and hardlink escapes stay inside the root', async (t) => {
  // Absolute link targets point at the scene's own `outside` directory rather than the
  // host's /etc: same hostile class, but a regression would hit a temp dir, not the machine.
  const cases: Array<{ name: string; layers: (outside: string) => RawEntry[][]; error?: new (...a: never[]) => Error; expect?: (root: string, outside: string) => Promise<void> }> = [
    {
      name: 'x -> /abs/outside then x/passwd writes <root>/abs/outside/passwd',
      layers: (outside) => [[{ name: 'x', flag: '2', linkname: outside }, { name: 'x/passwd', data: 'root::0:0::/:/bin/sh\n' }]],
      expect: async (root, outside) =>
        assert.equal(await readFile(join(root, outside, 'passwd'), 'utf8'), 'root::0:0::/:/bin/sh\n'),
    },
    {
      name: 'x -> ../../.. then x/unbroken is clamped to the root',
      layers: () => [[{ name: 'x', flag: '2', linkname: '../../..' }, { name: 'x/unbroken', data: 'pwned' }]],
      expect: async (root) => assert.equal(await readFile(join(root, 'unbroken'), 'utf8'), 'pwned'),
    },
    {
      name: 'hardlink to /etc/passwd resolves inside the root (missing there: refused)',
      layers: () => [[{ name: 'pw', flag: '1', linkname: '/etc/passwd' }]],
      error: ExtractError,
    },
    {
      name: 'hardlink through a symlinked parent stays inside',
      layers: () => [[{ name: 'l', flag: '2', linkname: '/etc' }, { name: 'h', flag: '1', linkname: 'l/unbroken' }]],
      expect: async (root) => assert.equal((await stat(join(root, 'h'))).ino, (await stat(join(root, 'etc/unbroken'))).ino),
    },
    {
      name: 'hardlink to a symlink pointing out links the symlink, not its target',
      layers: () => [[{ name: 's', flag: '2', linkname: '/etc/passwd' }, { name: 'h', flag: '1', linkname: 's' }]],
      expect: async (root) => assert.ok((await lstat(join(root, 'h'))).isSymbolicLink()),
    },
    {
      name: 'directory replaced by a symlink, then written through',
      layers: () => [[
        { name: 'd/', flag: '5' },
        { name: 'd/a', data: 'a' },
        { name: 'd', flag: '2', linkname: '../../outside' },
        { name: 'd/evil', data: 'x' },
      ]],
      expect: async (root) => assert.equal(await readFile(join(root, 'outside/evil'), 'utf8'), 'x'),
    },
    {
      name: 'a directory replaced by an outward symlink keeps its deferred chmod/mtime inside',
      layers: () => [[{ name: 'd/', flag: '5', mode: 0o777 }, { name: 'd', flag: '2', linkname: '../outside' }]],
      expect: async (root) => assert.ok((await lstat(join(root, 'd'))).isSymbolicLink()),
    },
    {
      name: 'a symlink in layer 1 and a write through it in layer 2 (two archives)',
      layers: () => [[{ name: 'x', flag: '2', linkname: '../' }], [{ name: 'x/unbroken', data: 'pwned' }]],
      expect: async (root) => assert.equal(await readFile(join(root, 'unbroken'), 'utf8'), 'pwned'),
    },
    {
      name: 'a file over an outward symlink replaces the link instead of writing through it',
      layers: () => [[{ name: 'f', flag: '2', linkname: '../unbroken' }], [{ name: 'f', data: 'replaced' }]],
      expect: async (root) => {
        assert.ok((await lstat(join(root, 'f'))).isFile());
        assert.equal(await readFile(join(root, 'f'), 'utf8'), 'replaced');
      },
    },
    {
      name: 'a whiteout through an outward symlink removes nothing outside',
      layers: () => [[{ name: 'x', flag: '2', linkname: '../..' }], [{ name: 'x/.wh.unbroken', data: '' }, { name: 'x/.wh..wh..opq', data: '' }]],
      // x resolves to the root itself, so the opaque marker clears the root's lower contents (x included).
      expect: async (root) => assert.deepEqual(await readdir(root), []),
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t2) => {
      const s = await scene(t2);
      const outside = join(s.base, 'outside');
      const run = applyLayers(s.root, c.layers(outside).map((l) => ({ open: () => Readable.from([rawTar(l)]) })));
      if (c.error) await assert.rejects(run, c.error);
      else await run;
      if (c.expect) await c.expect(s.root, outside);
      // After the opaque-root case the seeded root/etc/unbroken is gone by design; check the rest.
      if (c.name.startsWith('a whiteout through')) await mkdir(join(s.root, 'etc'), { recursive: true }).then(() => writeFile(join(s.root, 'etc/unbroken'), 'seeded'));
      await s.check();
    });
  }
});

// --- row 3: bombs ---------------------------------------------------------------

/** Samples RSS while `run` goes; answers the growth over the starting value. */
async function rssGrowth<T>(run: () => Promise<T>): Promise<{ growth: number; result: PromiseSettledResult<T> }> {
  const start = process.memoryUsage().rss;
  let peak = start;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 5);
  try {
    const [result] = await Promise.allSettled([run()]);
    peak = Math.max(peak, process.memoryUsage().rss);
    return { growth: peak - start, result };
  } finally {
    clearInterval(timer);
  }
}

function expectLimit(result: PromiseSettledResult<unknown>, limit: string): ExtractLimitError {
  assert.equal(result.status, 'rejected', 'extraction must fail');
  const err = (result as PromiseRejectedResult).reason as unknown;
  assert.ok(err instanceof ExtractLimitError, `want ExtractLimitError, got ${String(err)}`);
  assert.equal(err.limit, limit);
  return err;
}

test('row 3: a gzip bomb stops at maxBytes with flat memory and the partial root removed', async (t) => {
  const s = await scene(t);
  const cap = 64 * 1024 * 1024;
  // gzip members concatenate: one member holds a header declaring a 64 GiB file,
  // then the same 16 MiB-of-zeros member repeats. ~5 MB of gzip for 64 GiB of tar.
  const header = gzipSync(rawHeader({ name: 'big', size: 64 * 1024 ** 3 }));
  const zeros = gzipSync(Buffer.alloc(16 * 1024 * 1024), { level: 9 });
  let sent = 0;
  async function* bomb(): AsyncGenerator<Buffer> {
    yield header;
    for (let i = 0; i < 4096; i++) {
      sent++;
      yield zeros;
    }
  }
  const { growth, result } = await rssGrowth(() => extractTar(s.root, Readable.from(bomb()), { maxBytes: cap, removeOnError: true }));
  const err = expectLimit(result, 'maxBytes');
  assert.match(err.message, /more than 67108864 bytes \(maxBytes\)/);
  assert.ok(sent < 16, `fails fast: only ${sent} members were pulled`);
  assert.ok(growth < 96 * 1024 * 1024, `memory stays flat (grew ${growth} bytes)`);
  await assert.rejects(lstat(s.root), { code: 'ENOENT' }, 'partial data removed');
  await mkdir(join(s.root, 'etc'), { recursive: true });
  await writeFile(join(s.root, 'etc/unbroken'), 'seeded');
  await s.check();
});

test('row 3: a zstd bomb stops at maxBytes', async (t) => {
  const s = await scene(t);
  const zeros = execFileSync('zstd', ['-q', '-c', '-3'], { input: Buffer.alloc(16 * 1024 * 1024) });
  const header = execFileSync('zstd', ['-q', '-c'], { input: rawHeader({ name: '.wh.skipped', flag: 'Z', size: 64 * 1024 ** 3 }) });
  let sent = 0;
  async function* bomb(): AsyncGenerator<Buffer> {
    yield header;
    for (let i = 0; i < 2048; i++) {
      sent++;
      yield zeros;
    }
  }
  const { growth, result } = await rssGrowth(() => extractTar(s.root, Readable.from(bomb()), { maxBytes: 48 * 1024 * 1024 }));
  expectLimit(result, 'maxBytes');
  assert.ok(sent < 8, `fails fast: only ${sent} frames were pulled`);
  assert.ok(growth < 128 * 1024 * 1024, `memory stays bounded (grew ${growth} bytes)`);
  await s.check();
});

test('row 3: millions of tiny entries stop at maxEntries, lazily', async (t) => {
  const s = await scene(t);
  const one = rawEntry({ name: 'd/', flag: '5' });
  let made = 0;
  async function* many(): AsyncGenerator<Buffer> {
    for (let i = 0; i < 5_000_000; i++) {
      made++;
      yield one;
    }
  }
  const { result } = await rssGrowth(() => extractTar(s.root, Readable.from(many()), { maxEntries: 1000 } satisfies ExtractOptions));
  const err = expectLimit(result, 'maxEntries');
  assert.match(err.message, /more than 1000 entries/);
  assert.ok(made < 1100, `stopped reading after ${made} entries`);
  await s.check();
});

test('row 3: very deep and very long paths stop at maxPathDepth / maxPathLength', async (t) => {
  const s = await scene(t);
  const deep = 'a/'.repeat(500) + 'f';
  const r1 = await rssGrowth(() => extractTar(s.root, Readable.from([rawTar([{ name: deep, data: 'x' }])])));
  expectLimit(r1.result, 'maxPathDepth');
  await assert.rejects(lstat(join(s.root, 'a')), { code: 'ENOENT' }, 'nothing created before the check');

  const long = 'b'.repeat(200) + '/' + 'c'.repeat(5000);
  const r2 = await rssGrowth(() => extractTar(s.root, Readable.from([rawTar([{ name: long, data: 'x' }])])));
  expectLimit(r2.result, 'maxPathLength');

  const r3 = await rssGrowth(() =>
    extractTar(s.root, Readable.from([rawTar([{ name: 'x/'.repeat(20) + 'f', data: 'x' }])]), { maxPathDepth: 10 }),
  );
  expectLimit(r3.result, 'maxPathDepth');

  // A huge GNU long-name header is refused before it is buffered.
  const huge = rawTar([{ name: 'n'.repeat(3 * 1024 * 1024), data: 'x' }]);
  const r4 = await rssGrowth(() => extractTar(s.root, Readable.from([huge])));
  expectLimit(r4.result, 'maxMetaBytes');
  await s.check();
});
