// The newc reader and its confined extraction (security-cases.md rows 1–3 for
// CPIO initrds): round trips with our writer and GNU cpio, a strict header
// grammar, and a table of hostile archives built by a tiny explicit writer below,
// each checked to leave a sentinel beside the root untouched.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmod, chown, link, lstat, mkdir, mkdtemp, readFile, readdir, readlink, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { createCpioStream } from './cpio.js';
import { CpioFormatError, extractCpio, readCpio, type CpioHeader } from './cpio-read.js';
import { ExtractLimitError, ExtractPathError } from './extract.js';

async function temp(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-cpio-read-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

// --- a tiny explicit newc writer -------------------------------------------------

const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

interface RawEntry {
  name: string;
  mode: number;
  data?: Buffer | string;
  ino?: number;
  nlink?: number;
  uid?: number;
  mtime?: number;
  rdev?: [number, number];
  magic?: string;
  check?: number;
  /** Lie about the name size (the name written is still `name` + NUL). */
  nameSize?: number;
  /** Replace field text (index 0..12) verbatim. */
  field?: [number, string];
  namePad?: number;
}

const hex = (v: number): string => v.toString(16).toUpperCase().padStart(8, '0');
const pad4 = (n: number): Buffer => Buffer.alloc((4 - (n % 4)) % 4);

function rawEntry(e: RawEntry): Buffer {
  const data = e.data === undefined ? Buffer.alloc(0) : Buffer.from(e.data);
  const name = Buffer.from(`${e.name}\0`);
  const fields = [
    e.ino ?? 1,
    e.mode,
    e.uid ?? 0,
    0,
    e.nlink ?? 1,
    e.mtime ?? 1_600_000_000,
    data.length,
    0,
    0,
    e.rdev?.[0] ?? 0,
    e.rdev?.[1] ?? 0,
    e.nameSize ?? name.length,
    e.check ?? 0,
  ].map(hex);
  if (e.field) fields[e.field[0]] = e.field[1];
  const head = Buffer.concat([Buffer.from((e.magic ?? '070701') + fields.join(''), 'latin1'), name]);
  const namePad = e.namePad !== undefined ? Buffer.alloc(pad4(head.length).length, e.namePad) : pad4(head.length);
  return Buffer.concat([head, namePad, data, pad4(data.length)]);
}

const TRAILER = rawEntry({ name: 'TRAILER!!!', mode: 0, ino: 0 });
const archive = (...entries: RawEntry[]): Buffer => Buffer.concat([...entries.map(rawEntry), TRAILER]);
const dir = (name: string): RawEntry => ({ name, mode: S_IFDIR | 0o755 });
const file = (name: string, data: string, extra: Partial<RawEntry> = {}): RawEntry => ({ name, mode: S_IFREG | 0o644, data, ...extra });
const slink = (name: string, target: string): RawEntry => ({ name, mode: S_IFLNK | 0o777, data: target });

/** `<base>/root` to extract into, with `<base>/sentinel` (a file) and `<base>/outside/` beside it. */
async function sandbox(t: { after: (fn: () => Promise<void>) => void }): Promise<{ base: string; root: string; check: () => Promise<void> }> {
  const base = await temp(t);
  await writeFile(join(base, 'sentinel'), 'original');
  await mkdir(join(base, 'outside'));
  await writeFile(join(base, 'outside', 'file'), 'original');
  const check = async (): Promise<void> => {
    assert.equal(await readFile(join(base, 'sentinel'), 'utf8'), 'original', 'the sentinel beside the root is untouched');
    assert.equal(await readFile(join(base, 'outside', 'file'), 'utf8'), 'original');
    assert.deepEqual((await readdir(base)).filter((n) => n !== 'root').sort(), ['outside', 'sentinel'], 'nothing new beside the root');
    assert.deepEqual(await readdir(join(base, 'outside')), ['file'], 'nothing new outside the root');
    assert.equal((await lstat(join(base, 'sentinel'))).nlink, 1, 'the sentinel gained no hardlink');
  };
  return { base, root: join(base, 'root'), check };
}

// --- reading ---------------------------------------------------------------------

test('readCpio yields headers and data up to the trailer', async () => {
  const bytes = archive(dir('.'), file('./a', 'hello', { uid: 7, mtime: 1234 }), slink('./l', 'a'), { name: 'dev/null', mode: S_IFCHR | 0o666, rdev: [1, 3] });
  const seen: Array<{ header: CpioHeader; data: string }> = [];
  for await (const { header, body } of readCpio(Readable.from([bytes]))) {
    const parts: Buffer[] = [];
    for await (const c of body) parts.push(c);
    seen.push({ header, data: Buffer.concat(parts).toString() });
  }
  assert.deepEqual(
    seen.map((s) => [s.header.name, s.header.type, s.data]),
    [
      ['.', 'directory', ''],
      ['./a', 'file', 'hello'],
      ['./l', 'symlink', 'a'],
      ['dev/null', 'char', ''],
    ],
  );
  assert.equal(seen[1].header.uid, 7);
  assert.equal(seen[1].header.mtime, 1234);
  assert.equal(seen[1].header.mode, S_IFREG | 0o644);
  assert.deepEqual([seen[3].header.rdevMajor, seen[3].header.rdevMinor], [1, 3]);
});

test('readCpio skips bodies left unread and checks 070702 checksums', async () => {
  const data = 'checksummed data';
  const sum = [...Buffer.from(data)].reduce((a, b) => a + b, 0);
  const good = archive(file('x', data, { magic: '070702', check: sum }), file('y', 'second'));
  const names: string[] = [];
  for await (const { header } of readCpio(Readable.from([good]))) names.push(header.name);
  assert.deepEqual(names, ['x', 'y']);

  const bad = archive(file('x', data, { magic: '070702', check: sum + 1 }));
  await assert.rejects(async () => {
    for await (const e of readCpio(Readable.from([bad]))) void e;
  }, /fails its checksum/);
});

test('malformed headers are refused with CpioFormatError', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['bad magic', archive(file('a', 'x', { magic: '070707' })), /bad magic/],
    ['non-hex field', archive(file('a', 'x', { field: [1, '0000G1A4'] })), /not 8 hex digits/],
    ['signed field', archive(file('a', 'x', { field: [6, '-0000001'] })), /not 8 hex digits/],
    ['empty name', archive(file('', 'x')), /empty name/],
    ['name size too short (NUL not last)', archive(file('abcdef', 'x', { nameSize: 3 })), /NUL/],
    ['NUL inside the name', archive(file('ab\0cd', 'x')), /NUL/],
    ['non-zero name padding', archive(file('ab', 'x', { namePad: 0x41 })), /padding/],
    ['data on a directory', archive({ name: 'd', mode: S_IFDIR | 0o755, data: 'zz' }), /carries data/],
    ['unknown file type', archive({ name: 'q', mode: 0o170644 }), /unknown file type/],
    ['no trailer', rawEntry(file('a', 'x')), /without TRAILER/],
    ['truncated header', archive(file('a', 'x')).subarray(0, 50), /truncated/],
    ['truncated data', rawEntry(file('a', 'hello world, this is long')).subarray(0, 120), /truncated/],
  ];
  for (const [name, bytes, message] of cases) {
    await t.test(name, async () => {
      await assert.rejects(
        async () => {
          for await (const { body } of readCpio(Readable.from([bytes]))) for await (const c of body) void c;
        },
        (e: unknown) => e instanceof CpioFormatError && message.test(e.message),
      );
    });
  }
});

// --- round trips -----------------------------------------------------------------

async function buildTree(root: string): Promise<void> {
  await mkdir(join(root, 'bin'), { recursive: true });
  await mkdir(join(root, 'etc/ssl'), { recursive: true });
  await mkdir(join(root, 'tmp'));
  await writeFile(join(root, 'bin/tool'), Buffer.alloc(70_001, 0x61));
  await chown(join(root, 'bin/tool'), 1234, 5678);
  await chmod(join(root, 'bin/tool'), 0o4755); // after chown, which clears setuid
  await link(join(root, 'bin/tool'), join(root, 'bin/tool-a'));
  await link(join(root, 'bin/tool'), join(root, 'etc/tool-b'));
  await writeFile(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  await writeFile(join(root, 'empty'), '');
  await writeFile(join(root, 'empty-a'), '');
  await link(join(root, 'empty-a'), join(root, 'empty-b'));
  await chmod(join(root, 'etc/ssl'), 0o2750);
  await chmod(join(root, 'tmp'), 0o1777);
  await symlink('../etc/hosts', join(root, 'bin/hosts-link'));
  await symlink('/does/not/exist', join(root, 'dangling'));
  for (const p of ['bin/tool', 'etc/hosts', 'bin', 'etc/ssl', 'tmp']) await utimes(join(root, p), 1_500_000_000, 1_500_000_000);
}

async function checkTree(dest: string, owners: boolean): Promise<void> {
  const tool = await lstat(join(dest, 'bin/tool'));
  assert.equal(tool.mode & 0o7777, 0o4755, 'setuid kept');
  assert.equal(tool.size, 70_001);
  if (owners) assert.deepEqual([tool.uid, tool.gid], [1234, 5678]);
  assert.equal(tool.mtimeMs, 1_500_000_000_000);
  assert.equal((await lstat(join(dest, 'bin/tool-a'))).ino, tool.ino, 'hardlink restored');
  assert.equal((await lstat(join(dest, 'etc/tool-b'))).ino, tool.ino, 'hardlink restored across directories');
  assert.equal(tool.nlink, 3);
  assert.equal((await lstat(join(dest, 'empty-b'))).ino, (await lstat(join(dest, 'empty-a'))).ino, 'a hardlinked empty file stays linked');
  assert.equal((await lstat(join(dest, 'tmp'))).mode & 0o7777, 0o1777);
  assert.equal((await lstat(join(dest, 'etc/ssl'))).mode & 0o7777, 0o2750);
  assert.equal((await lstat(join(dest, 'etc/ssl'))).mtimeMs, 1_500_000_000_000, 'directory mtimes set after their contents');
  assert.equal(await readlink(join(dest, 'bin/hosts-link')), '../etc/hosts');
  assert.equal(await readlink(join(dest, 'dangling')), '/does/not/exist');
  assert.equal(await readFile(join(dest, 'etc/hosts'), 'utf8'), '127.0.0.1 localhost\n');
  assert.equal((await lstat(join(dest, 'empty'))).size, 0);
}

test('round trip with our newc writer (hardlink data last and first)', async (t) => {
  const base = await temp(t);
  await buildTree(join(base, 'src'));
  for (const hardlinkData of ['last', 'first'] as const) {
    const dest = join(base, `dst-${hardlinkData}`);
    const result = await extractCpio(dest, createCpioStream(join(base, 'src'), { keepOwners: true, hardlinkData }));
    assert.equal(result.entries, 14);
    await checkTree(dest, true);
  }
});

test('round trip with GNU cpio -o -H newc and -H crc, plain and gzip-compressed', async (t) => {
  const base = await temp(t);
  await buildTree(join(base, 'src'));
  for (const format of ['newc', 'crc']) {
    const bytes = execFileSync('sh', ['-c', `find . | LC_ALL=C sort | cpio -o -H ${format} --quiet`], { cwd: join(base, 'src'), maxBuffer: 16 * 1024 * 1024 });
    assert.equal(bytes.subarray(0, 6).toString(), format === 'newc' ? '070701' : '070702');
    await extractCpio(join(base, `dst-${format}`), Readable.from([bytes]));
    await checkTree(join(base, `dst-${format}`), true);
    await extractCpio(join(base, `dst-${format}-gz`), Readable.from([gzipSync(bytes)]));
    await checkTree(join(base, `dst-${format}-gz`), true);
  }
});

test('device nodes are skipped unless allowed (as root)', async (t) => {
  const base = await temp(t);
  const bytes = archive(dir('dev'), { name: 'dev/null', mode: S_IFCHR | 0o666, rdev: [1, 3] });
  const warnings: string[] = [];
  const r = await extractCpio(join(base, 'a'), Readable.from([bytes]), { onWarning: (m) => warnings.push(m) });
  assert.equal(r.skipped, 1);
  assert.match(warnings[0], /device node "dev\/null"/);
  await assert.rejects(lstat(join(base, 'a/dev/null')), { code: 'ENOENT' });
  if (process.getuid?.() !== 0) return t.skip('needs root for mknod');
  await extractCpio(join(base, 'b'), Readable.from([bytes]), { allowDevices: true });
  const st = await lstat(join(base, 'b/dev/null'));
  assert.ok(st.isCharacterDevice());
});

// --- hostile archives --------------------------------------------------------------

test('hostile CPIO archives: rejected or confined, nothing written outside the root', async (t) => {
  const HUGE = 0xffffffff;
  const cases: Array<{ name: string; bytes: Buffer; error?: (e: unknown) => boolean; inside?: Record<string, string> }> = [
    { name: '../ climbs out', bytes: archive(file('../sentinel', 'pwned')), error: (e) => e instanceof ExtractPathError },
    { name: 'a/../../ climbs out', bytes: archive(dir('a'), file('a/../../sentinel', 'pwned')), error: (e) => e instanceof ExtractPathError },
    { name: 'absolute name is confined', bytes: archive(file('/sentinel', 'pwned')), inside: { sentinel: 'pwned' } },
    {
      name: 'symlink to outside, then a write through it',
      bytes: archive(slink('out', '../outside'), file('out/file', 'pwned')),
      inside: { 'outside/file': 'pwned' },
    },
    {
      name: 'symlink to / then a write through it lands in the root',
      bytes: archive(slink('etc', '/'), file('etc/sentinel', 'pwned')),
      inside: { sentinel: 'pwned' },
    },
    {
      name: 'symlink at a name, then a file at the same name replaces the link',
      bytes: archive(slink('s', '../sentinel'), file('s', 'pwned')),
      inside: { s: 'pwned' },
    },
    {
      name: 'hardlink member named through a link to outside',
      bytes: archive(slink('up', '../..'), file('up/sentinel', '', { ino: 9, nlink: 2 }), file('carrier', 'pwned', { ino: 9, nlink: 2 })),
      inside: { sentinel: 'pwned', carrier: 'pwned' },
    },
    {
      name: 'hardlink member climbing with ..',
      bytes: archive(file('../sentinel', '', { ino: 9, nlink: 2 }), file('carrier', 'pwned', { ino: 9, nlink: 2 })),
      error: (e) => e instanceof ExtractPathError,
    },
    {
      name: 'hardlink carrier replaced by a link to outside before a late member',
      bytes: archive(file('c', 'data', { ino: 5, nlink: 2 }), slink('c', '../sentinel'), file('late', '', { ino: 5, nlink: 2 })),
      inside: { c: '->../sentinel' },
    },
    {
      name: 'huge name size is refused before it is read',
      bytes: archive(file('a', 'x', { nameSize: HUGE })),
      error: (e) => e instanceof ExtractLimitError && e.limit === 'maxPathLength',
    },
    { name: 'truncated archive', bytes: archive(file('a', 'hello world')).subarray(0, 118), error: (e) => e instanceof CpioFormatError },
    {
      name: 'symlink target over the length limit',
      bytes: archive(slink('l', 'x'.repeat(5000))),
      error: (e) => e instanceof ExtractLimitError && e.limit === 'maxPathLength',
    },
  ];
  for (const c of cases) {
    await t.test(c.name, async (t2) => {
      const s = await sandbox(t2);
      const run = extractCpio(s.root, Readable.from([c.bytes]));
      if (c.error) await assert.rejects(run, c.error);
      else await run;
      for (const [path, want] of Object.entries(c.inside ?? {})) {
        if (want.startsWith('->')) assert.equal(await readlink(join(s.root, path)), want.slice(2));
        else assert.equal(await readFile(join(s.root, path), 'utf8'), want, `${path} inside the root`);
      }
      await s.check();
    });
  }
});

test('CPIO limits: entries, bytes, depth, waiting hardlink names', async (t) => {
  const cases: Array<[string, Buffer, Parameters<typeof extractCpio>[2], string]> = [
    ['maxEntries', archive(...Array.from({ length: 20 }, (_, i) => file(`f${i}`, 'x'))), { maxEntries: 10 }, 'maxEntries'],
    ['maxBytes', archive(file('big', 'y'.repeat(100_000))), { maxBytes: 50_000 }, 'maxBytes'],
    ['maxPathDepth', archive(file(Array.from({ length: 40 }, () => 'd').join('/'), 'x')), { maxPathDepth: 32 }, 'maxPathDepth'],
    [
      'maxMetaBytes (hardlink names waiting for data)',
      archive(...Array.from({ length: 50 }, (_, i) => file(`waiting-${'n'.repeat(40)}-${i}`, '', { ino: 3, nlink: 51 }))),
      { maxMetaBytes: 1024 },
      'maxMetaBytes',
    ],
  ];
  for (const [name, bytes, options, limit] of cases) {
    await t.test(name, async (t2) => {
      const s = await sandbox(t2);
      await assert.rejects(extractCpio(s.root, Readable.from([bytes]), { ...options, removeOnError: true }), (e: unknown) => e instanceof ExtractLimitError && e.limit === limit);
      await assert.rejects(lstat(s.root), { code: 'ENOENT' }, 'the partial root is removed');
      await s.check();
    });
  }
});
