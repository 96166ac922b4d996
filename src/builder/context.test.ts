import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BadPatternError,
  ContextError,
  NO_FILTER,
  cleanSourcePath,
  createContextFilter,
  goMatch,
  loadDockerignore,
  parseDockerignore,
  resolveCopySources,
  resolveInRoot,
  walkContext,
  type CopyOperation,
  type CopyRequest,
} from './context.js';

async function withContext(files: Record<string, string | { link: string }>, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-context-'));
  try {
    for (const [path, body] of Object.entries(files)) {
      const full = join(dir, path);
      await mkdir(join(full, '..'), { recursive: true });
      if (path.endsWith('/')) await mkdir(full, { recursive: true });
      else if (typeof body === 'string') await writeFile(full, body);
      else await symlink(body.link, full);
    }
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function summary(dir: string, ops: CopyOperation[]): string[] {
  return ops.map((op) => {
    if (op.kind === 'url') return `url ${op.url} -> ${op.dest}`;
    const src = op.source === null ? '-' : op.source.slice(dir.length + 1);
    const extra = op.kind === 'symlink' ? ` (link ${op.target})` : op.kind === 'file' && op.placeIntoExistingDir ? ` (or into dir as ${op.placeIntoExistingDir})` : '';
    return `${op.kind} ${src} -> ${op.dest}${extra}`;
  });
}

const copy = (root: string, sources: string[], dest: string, extra: Partial<CopyRequest> = {}) =>
  resolveCopySources({ root, filter: NO_FILTER, sources, dest, destIsDir: dest.endsWith('/'), ...extra });

test('rule: .dockerignore patterns are anchored at the context root', () => {
  const f = createContextFilter(parseDockerignore('# comment\n/secret\ntmp\n\n  spaced  \nsub/../up\n'));
  assert.equal(f.excludes('secret'), true);
  assert.equal(f.excludes('a/secret'), false, 'not matched at any depth (not gitignore)');
  assert.equal(f.excludes('tmp/x'), true, 'an excluded directory excludes its contents');
  assert.equal(f.excludes('spaced'), true);
  assert.equal(f.excludes('up'), true, 'patterns are cleaned');
  assert.equal(f.excludes('# comment'), false);
});

test('rule: .dockerignore ** matches any number of directories', () => {
  const f = createContextFilter(['**/*.log', 'a/**/b']);
  assert.equal(f.excludes('x.log'), true);
  assert.equal(f.excludes('deep/er/x.log'), true);
  assert.equal(f.excludes('a/b'), true);
  assert.equal(f.excludes('a/x/y/b'), true);
  assert.equal(f.excludes('x.txt'), false);
});

test('rule: .dockerignore ! re-includes and the last matching line wins', () => {
  const f = createContextFilter(['*.md', '!README*.md', 'README-secret.md']);
  assert.equal(f.excludes('CHANGES.md'), true);
  assert.equal(f.excludes('README.md'), false);
  assert.equal(f.excludes('README-secret.md'), true);
  const g = createContextFilter(['node_modules', '!node_modules/keep']);
  assert.equal(g.excludes('node_modules/other'), true);
  assert.equal(g.excludes('node_modules/keep/file'), false);
});

test('rule: <Dockerfile>.dockerignore beside the Dockerfile takes precedence', async () => {
  await withContext({ '.dockerignore': 'a\n', 'build/prod.Dockerfile': 'FROM scratch\n', 'build/prod.Dockerfile.dockerignore': 'b\n' }, async (dir) => {
    const specific = await loadDockerignore(dir, join(dir, 'build', 'prod.Dockerfile'));
    assert.equal(specific.source, join(dir, 'build', 'prod.Dockerfile.dockerignore'));
    assert.deepEqual([specific.excludes('a'), specific.excludes('b')], [false, true]);
    const general = await loadDockerignore(dir, join(dir, 'Dockerfile'));
    assert.deepEqual([general.excludes('a'), general.excludes('b')], [true, false]);
  });
  await withContext({ 'x': '' }, async (dir) => {
    const none = await loadDockerignore(dir);
    assert.equal(none.source, null);
    assert.equal(none.excludes('x'), false);
  });
});

test('walkContext lists what is left in, parents first, and enters excluded dirs with exceptions', async () => {
  await withContext(
    { 'a.txt': '', '.git/config': '', 'node_modules/x/i.js': '', 'node_modules/keep/k.js': '', 'src/m.ts': '', 'src/m.log': '', 'ln': { link: 'src' } },
    async (dir) => {
      const filter = createContextFilter(['.git', 'node_modules', '!node_modules/keep', '**/*.log']);
      const entries = await walkContext(dir, filter);
      assert.deepEqual(entries.map((e) => `${e.type[0]} ${e.path}`), [
        'f a.txt',
        's ln',
        'd node_modules',
        'd node_modules/keep',
        'f node_modules/keep/k.js',
        'd src',
        'f src/m.ts',
      ]);
      await assert.rejects(walkContext(dir, NO_FILTER, { maxEntries: 3 }), ContextError);
    },
  );
});

test('rule: COPY wildcards are Go filepath.Match per segment', () => {
  const cases: [string, string, boolean][] = [
    ['*', '.hidden', true], // `*` matches dotfiles
    ['*.py', 'server.py', true],
    ['*.py', 'a/server.py', false], // never crosses '/'
    ['?', 'a', true],
    ['?', '', false],
    ['a?c', 'abc', true],
    ['[a-c]x', 'bx', true],
    ['[a-c]x', 'dx', false],
    ['[^a-c]x', 'dx', true],
    ['[^a-c]x', 'ax', false],
    ['[!a]', '!', true], // Go has no [!...]: '!' is literal
    ['[!a]', 'b', false],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    ['a*b*c', 'aXXbYYc', true],
    ['a*b*c', 'aXXbYY', false],
    ['**', 'x', true], // no globstar: just two stars
    ['{a,b}', 'a', false], // no braces
    ['{a,b}', '{a,b}', true],
  ];
  for (const [pattern, name, want] of cases) assert.equal(goMatch(pattern, name), want, `${pattern} vs ${name}`);
  for (const bad of ['[', '[a-', '[]', 'a\\', '[z-]']) assert.throws(() => goMatch(bad, 'a'), BadPatternError, bad);
});

test('rule: a directory source copies its contents; symlinks inside stay links', async () => {
  await withContext({ 'app/main.py': 'x', 'app/lib/util.py': 'y', 'app/current': { link: 'lib' }, 'app/empty/': '' }, async (dir) => {
    assert.deepEqual(summary(dir, await copy(dir, ['app'], '/srv')), [
      'directory - -> /srv',
      'symlink app/current -> /srv/current (link lib)',
      'directory app/empty -> /srv/empty',
      'directory app/lib -> /srv/lib',
      'file app/lib/util.py -> /srv/lib/util.py',
      'file app/main.py -> /srv/main.py',
    ]);
  });
});

test('rule: destination ending in /, several sources or a wildcard makes a directory', async () => {
  await withContext({ 'a.py': '', 'b.py': '', 'c.txt': '' }, async (dir) => {
    assert.deepEqual(summary(dir, await copy(dir, ['a.py'], '/dst/')), ['file a.py -> /dst/a.py']);
    assert.deepEqual(summary(dir, await copy(dir, ['a.py'], '/dst/renamed.py')), ['file a.py -> /dst/renamed.py (or into dir as a.py)']);
    assert.deepEqual(summary(dir, await copy(dir, ['a.py', 'c.txt'], '/dst')), ['file a.py -> /dst/a.py', 'file c.txt -> /dst/c.txt']);
    assert.deepEqual(summary(dir, await copy(dir, ['*.py'], '/dst')), ['file a.py -> /dst/a.py', 'file b.py -> /dst/b.py']);
    assert.deepEqual(summary(dir, await copy(dir, ['[ab].py'], '/one')), ['file a.py -> /one/a.py', 'file b.py -> /one/b.py']);
    await assert.rejects(copy(dir, ['*.rs'], '/dst/'), /COPY source "\*\.rs" matches no files/);
    await assert.rejects(copy(dir, ['nope'], '/dst/'), /COPY source "nope" not found in the build context/);
  });
});

test('rule: wildcards match per segment in subdirectories and skip ignored files', async () => {
  await withContext({ 'src/a/x.py': '', 'src/b/y.py': '', 'src/b/z.pyc': '', 'src/c/secret.py': '' }, async (dir) => {
    const filter = createContextFilter(['src/c']);
    const ops = await resolveCopySources({ root: dir, filter, sources: ['src/*/*.py'], dest: '/app', destIsDir: false });
    assert.deepEqual(summary(dir, ops), ['file src/a/x.py -> /app/x.py', 'file src/b/y.py -> /app/y.py']);
  });
});

test('rule: sources must stay inside the context (../ is an error, absolute is relative to the root)', async () => {
  await withContext({ 'etc/conf': 'c' }, async (dir) => {
    await assert.rejects(copy(dir, ['../outside'], '/x'), /COPY source "\.\.\/outside" is outside the build context/);
    await assert.rejects(copy(dir, ['etc/../../x'], '/x'), /outside the build context/);
    assert.deepEqual(summary(dir, await copy(dir, ['/etc/conf'], '/x')), ['file etc/conf -> /x (or into dir as conf)']);
    assert.equal(cleanSourcePath('./a//b/'), 'a/b');
    assert.equal(cleanSourcePath('.'), '');
  });
});

test('hostile: a symlink to / or climbing out is resolved inside the context, never the host', async () => {
  await withContext(
    { 'root': { link: '/' }, 'up': { link: '../../../../..' }, 'etc/passwd': 'context copy', 'abs': { link: '/etc/passwd' } },
    async (dir) => {
      for (const source of ['root/etc/passwd', 'up/etc/passwd', 'abs', 'root/root/../etc/passwd']) {
        const ops = await copy(dir, [source], '/out');
        assert.equal(ops.length, 1, source);
        const op = ops[0];
        assert.ok(op?.kind === 'file' && op.source === join(dir, 'etc/passwd'), `${source} -> ${JSON.stringify(op)}`);
      }
      await assert.rejects(copy(dir, ['root/etc/shadow'], '/out'), /not found in the build context/);
      await assert.rejects(copy(dir, ['root/../../etc/passwd'], '/out'), /outside the build context/, 'a lexical escape is refused outright');
      assert.equal(await resolveInRoot(dir, 'root/root/root/etc'), 'etc');
    },
  );
});

test('hostile: symlink loops end with an error', async () => {
  await withContext({ 'a': { link: 'b' }, 'b': { link: 'a' } }, async (dir) => {
    await assert.rejects(copy(dir, ['a'], '/x'), /too many levels of symbolic links/);
  });
});

test('rule: a symlink named as a source is followed', async () => {
  await withContext({ 'real/file': 'data', 'alias': { link: 'real' }, 'f': { link: 'real/file' } }, async (dir) => {
    assert.deepEqual(summary(dir, await copy(dir, ['f'], '/x/')), ['file real/file -> /x/f']);
    assert.deepEqual(summary(dir, await copy(dir, ['alias'], '/y')), ['directory - -> /y', 'file real/file -> /y/file']);
  });
});

test('hostile: files excluded by .dockerignore are never copied, however they are named', async () => {
  await withContext({ 'secret.env': 'k', 'ok.txt': '', 'peek': { link: 'secret.env' }, 'dir/secret.env': '', 'dir/fine': '' }, async (dir) => {
    const filter = createContextFilter(['secret.env', 'dir/secret.env'], '.dockerignore');
    const req = (sources: string[]): CopyRequest => ({ root: dir, filter, sources, dest: '/d/', destIsDir: true });
    await assert.rejects(resolveCopySources(req(['secret.env'])), /COPY source "secret.env" is excluded by \.dockerignore/);
    await assert.rejects(resolveCopySources(req(['peek'])), /leads to "secret.env", which is excluded/);
    assert.deepEqual(summary(dir, await resolveCopySources(req(['*']))).filter((l) => l.includes('secret')), []);
    assert.deepEqual(summary(dir, await resolveCopySources(req(['dir']))), ['directory - -> /d', 'file dir/fine -> /d/fine']);
  });
});

test('COPY --exclude and ADD URLs', async () => {
  await withContext({ 'app/a.py': '', 'app/a.pyc': '' }, async (dir) => {
    assert.deepEqual(summary(dir, await copy(dir, ['app'], '/s', { excludes: ['*.pyc'] })), ['directory - -> /s', 'file app/a.py -> /s/a.py']);
    assert.deepEqual(summary(dir, await copy(dir, ['https://example.com/f/x.tgz'], '/dl/', { allowUrls: true, instruction: 'ADD' })), [
      'url https://example.com/f/x.tgz -> /dl/x.tgz',
    ]);
    await assert.rejects(copy(dir, ['https://example.com/x'], '/dl/'), /COPY cannot fetch URLs/);
  });
});

test("rule: paths read from another stage resolve inside that stage's root (Debian /lib -> usr/lib)", async () => {
  await withContext(
    { 'usr/lib/x86_64-linux-gnu/libc.so.6': 'libc', 'lib': { link: 'usr/lib' }, 'lib64': { link: '/usr/lib64' }, 'usr/lib64/ld-linux-x86-64.so.2': 'ld' },
    async (stageRoot) => {
      const ops = await copy(stageRoot, ['/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2'], '/out/');
      assert.deepEqual(summary(stageRoot, ops), [
        'file usr/lib/x86_64-linux-gnu/libc.so.6 -> /out/libc.so.6',
        'file usr/lib64/ld-linux-x86-64.so.2 -> /out/ld-linux-x86-64.so.2',
      ]);
    },
  );
});
