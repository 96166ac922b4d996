import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { KraftfileError, classifyRootfsFile, loadKraftfile, parseKraftfile, quoteCommandWord, splitCommandLine } from './kraftfile.js';

function fails(text: string, pattern: RegExp, line?: number): void {
  assert.throws(() => parseKraftfile(text, 'Kraftfile'), (e: unknown) => {
    assert.ok(e instanceof KraftfileError, String(e));
    assert.match(e.message, pattern);
    if (line !== undefined) assert.equal(e.line, line, e.message);
    return true;
  });
}

test('parses the docs example with every common field', () => {
  const k = parseKraftfile(
    [
      'spec: v0.6',
      'name: hello',
      'runtime: base-compat:latest',
      'rootfs: ./Dockerfile',
      'cmd: ["/usr/bin/python3", "/src/server.py"]',
      'env:',
      '  ZED: last',
      '  ALPHA: 1',
      '  EMPTY:',
      'labels:',
      '  team: web',
      '  tier: 2',
      'volumes:',
      '  - data:/data:ro',
      '  - { source: logs, destination: /logs }',
      'targets:',
      '  - kraftcloud/x86_64',
      '  - { plat: qemu, arch: arm64 }',
      '  - { platform: fc, architecture: x86_64 }',
      'roms: [./rom.bin]',
      '',
    ].join('\n'),
  );
  assert.equal(k.spec, 'v0.6');
  assert.equal(k.name, 'hello');
  assert.equal(k.runtime, 'base-compat:latest');
  assert.deepEqual(k.rootfs, { path: './Dockerfile', dockerfile: null, type: null, format: null, line: 4 });
  assert.deepEqual(k.cmd, ['/usr/bin/python3', '/src/server.py']);
  assert.deepEqual(k.env, ['ALPHA=1', 'EMPTY=', 'ZED=last'], 'a map is sorted by key');
  assert.deepEqual(k.labels, { team: 'web', tier: '2' });
  assert.deepEqual(k.volumes, [
    { source: 'data', destination: '/data', driver: null, readOnly: true },
    { source: 'logs', destination: '/logs', driver: null, readOnly: false },
  ]);
  assert.deepEqual(k.targets, [
    { platform: 'kraftcloud', architecture: 'x86_64' },
    { platform: 'qemu', architecture: 'arm64' },
    { platform: 'fc', architecture: 'x86_64' },
  ]);
  assert.deepEqual(k.roms, ['./rom.bin']);
});

test('spec versions v0.5 to v0.7, also as `specification` and bare numbers', () => {
  assert.equal(parseKraftfile('specification: v0.5\nruntime: x\n').spec, 'v0.5');
  assert.equal(parseKraftfile('spec: 0.7\nruntime: x\n').spec, 'v0.7');
  fails('spec: v0.4\nruntime: x\n', /^Kraftfile:1: spec: unsupported version "v0.4"/, 1);
  fails('runtime: x\n', /spec: is required/);
  fails('spec: v0.6\nspecification: v0.6\nruntime: x\n', /either spec or specification/, 2);
});

test('env as a list keeps order and validates names, naming the line', () => {
  assert.deepEqual(parseKraftfile('spec: v0.6\nruntime: x\nenv:\n  - B=2\n  - A=1=x\n').env, ['B=2', 'A=1=x']);
  fails('spec: v0.6\nruntime: x\nenv:\n  - GOOD=1\n  - 1BAD=2\n', /^Kraftfile:5: env\[1\]: "1BAD" is not a valid variable name/, 5);
  fails('spec: v0.6\nruntime: x\nenv:\n  - NOVALUE\n', /env\[0\]: "NOVALUE" must be KEY=VALUE/, 4);
  fails('spec: v0.6\nruntime: x\nenv:\n  bad-name: 1\n', /^Kraftfile:4: env.bad-name:/, 4);
  fails('spec: v0.6\nruntime: x\nenv: 5\n', /env: must be a list/, 3);
});

test('cmd as a string is split shell-style', () => {
  const k = parseKraftfile(`spec: v0.6\nruntime: x\ncmd: /bin/app --name "a b" 'c d' e\\ f\n`);
  assert.deepEqual(k.cmd, ['/bin/app', '--name', 'a b', 'c d', 'e f']);
  fails('spec: v0.6\nruntime: x\ncmd: "echo \'oops"\n', /^Kraftfile:3: cmd: cannot split .*unterminated single quote/, 3);
  fails('spec: v0.6\nruntime: x\ncmd: [a, {b: 1}]\n', /cmd\[1\]: must be a single value/, 3);
});

test('one of runtime, unikraft, template is required', () => {
  fails('spec: v0.6\nname: x\n', /one of runtime, unikraft or template is required/);
  assert.deepEqual(parseKraftfile('spec: v0.6\nunikraft:\n  version: stable\n').unikraft, { version: 'stable' });
  assert.equal(parseKraftfile('spec: v0.6\ntemplate: app/elfloader:latest\n').template, 'app/elfloader:latest');
});

test('unknown top-level fields are rejected with their line', () => {
  fails('spec: v0.6\nruntime: x\ncomand: [a]\n', /^Kraftfile:3: comand: unknown field/, 3);
});

test('targets are validated', () => {
  fails('spec: v0.6\nruntime: x\ntargets:\n  - kraftcloud\n', /targets\[0\]: "kraftcloud" must be PLATFORM\/ARCH/, 4);
  fails('spec: v0.6\nruntime: x\ntargets:\n  - mars/x86_64\n', /unknown platform "mars"/, 4);
  fails('spec: v0.6\nruntime: x\ntargets:\n  - { plat: qemu }\n', /needs arch/, 4);
  fails('spec: v0.6\nruntime: x\ntargets:\n  - { plat: qemu, arch: x86_64, cpu: 2 }\n', /targets\[0\].cpu: unknown field/, 4);
});

test('rootfs long form (v0.7)', () => {
  const short = parseKraftfile('spec: v0.7\nruntime: x\nrootfs:\n  source: ./Dockerfile\n  format: erofs\n').rootfs;
  assert.deepEqual(short, { path: './Dockerfile', dockerfile: null, type: null, format: 'erofs', line: 4 });
  const long = parseKraftfile('spec: v0.7\nruntime: x\nrootfs:\n  source:\n    path: ./app\n    dockerfile: ./app/Containerfile\n  format: cpio\n').rootfs;
  assert.deepEqual(long, { path: './app', dockerfile: './app/Containerfile', type: 'dockerfile', format: 'cpio', line: 4 });
  fails('spec: v0.7\nruntime: x\nrootfs:\n  source: ./x\n  format: squashfs\n', /^Kraftfile:5: rootfs.format: "squashfs" must be cpio or erofs/, 5);
  fails('spec: v0.7\nruntime: x\nrootfs:\n  format: cpio\n', /rootfs.source: is required/);
});

test('YAML syntax errors, duplicate keys and non-map documents name the line', () => {
  fails('spec: v0.6\nruntime: x\ncmd: [a, b\n', /^Kraftfile:\d+: not valid YAML/);
  fails('spec: v0.6\nruntime: x\nruntime: y\n', /^Kraftfile:3: not valid YAML/, 3);
  fails('- a\n- b\n', /must be a YAML map/);
  fails('spec: v0.6\nruntime:\n', /runtime: is empty/, 2);
});

test('loadKraftfile finds the file and classifies rootfs relative to it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-kraftfile-'));
  try {
    await mkdir(join(dir, 'app', 'rootfs'), { recursive: true });
    await writeFile(join(dir, 'app', 'Dockerfile'), 'FROM scratch\n');
    await writeFile(join(dir, 'app', 'initrd.img'), '070701' + '0'.repeat(100));
    await writeFile(join(dir, 'app', 'layer'), Buffer.from([0x1f, 0x8b, 8, 0]));
    const write = (body: string) => writeFile(join(dir, 'app', 'kraft.yaml'), `spec: v0.6\nruntime: base:latest\n${body}`);

    await write('rootfs: ./Dockerfile\n');
    const k = await loadKraftfile(join(dir, 'app'));
    assert.equal(k.file, join(dir, 'app', 'kraft.yaml'));
    assert.deepEqual(k.rootfsResolved, { kind: 'dockerfile', dockerfile: join(dir, 'app', 'Dockerfile'), context: join(dir, 'app'), format: null });

    await write('rootfs: rootfs\n');
    assert.deepEqual((await loadKraftfile(join(dir, 'app', 'kraft.yaml'))).rootfsResolved, { kind: 'directory', path: join(dir, 'app', 'rootfs'), format: null });
    await write('rootfs: initrd.img\n');
    assert.equal((await loadKraftfile(join(dir, 'app'))).rootfsResolved?.kind, 'cpio');
    await write('rootfs: layer\n');
    assert.equal((await loadKraftfile(join(dir, 'app'))).rootfsResolved?.kind, 'tarball');
    await write('rootfs:\n  source:\n    path: .\n    dockerfile: Dockerfile\n');
    assert.deepEqual((await loadKraftfile(join(dir, 'app'))).rootfsResolved, { kind: 'dockerfile', dockerfile: join(dir, 'app', 'Dockerfile'), context: join(dir, 'app'), format: null });

    await write('rootfs: ./missing\n');
    await assert.rejects(loadKraftfile(join(dir, 'app')), /kraft.yaml:3: rootfs: \.\/missing does not exist/);
    // A Kraftfile takes precedence over kraft.yaml.
    await writeFile(join(dir, 'app', 'Kraftfile'), 'spec: v0.6\nruntime: other\n');
    assert.equal((await loadKraftfile(join(dir, 'app'))).runtime, 'other');
    await assert.rejects(loadKraftfile(join(dir, 'app', 'rootfs')), /no Kraftfile here/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('rootfs file classification by content first, then by name', () => {
  const tar = Buffer.alloc(512);
  tar.write('ustar', 257, 'latin1');
  assert.equal(classifyRootfsFile('x', tar), 'tarball');
  const erofs = Buffer.alloc(1100);
  erofs.writeUInt32LE(0xe0f5e1e2, 1024);
  assert.equal(classifyRootfsFile('x', erofs), 'erofs');
  assert.equal(classifyRootfsFile('prod.Dockerfile', Buffer.from('FROM x')), 'dockerfile');
  assert.equal(classifyRootfsFile('notes.txt', Buffer.from('hello world')), null);
  // Files shorter than any magic (an empty Dockerfile) are classified by name, never read past their end.
  assert.equal(classifyRootfsFile('Dockerfile', Buffer.alloc(0)), 'dockerfile');
  assert.equal(classifyRootfsFile('x', Buffer.from([0x28, 0xb5])), null);
});

test('property: quoting words and joining them splits back to the same words', () => {
  fc.assert(
    fc.property(fc.array(fc.string({ maxLength: 12 }), { maxLength: 6 }), (words) => {
      const line = words.map(quoteCommandWord).join(' ');
      assert.deepEqual(splitCommandLine(line), words);
    }),
    { seed: 42, numRuns: 200 },
  );
});

test('property: text without quotes, backslashes or blanks other than spaces splits on spaces', () => {
  const plain = fc.string({ maxLength: 30 }).filter((s) => !/['"\\\t\n]/.test(s));
  fc.assert(
    fc.property(plain, (s) => {
      assert.deepEqual(splitCommandLine(s), s.split(' ').filter((w) => w !== ''));
    }),
    { seed: 42, numRuns: 200 },
  );
});
