// End to end: a Kraftfile rootfs given as an EROFS image or a CPIO archive, with
// `runtime: base-compat` from a real registry (ukc's own `ukcd registry`): the
// runtime's base rootfs is laid under the app's, so the EROFS image is extracted
// and re-made, and the initrd holds both trees.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startUkcRegistry, type RunningRegistry } from '../../bench/lib/servers.js';
import { RegistryClient } from '../../src/client/registry-client.js';
import { publishOfficialRuntimes } from '../../src/builder/package/official.js';
import { buildProject } from '../../src/builder/exec/project.js';

const ROOT = new URL('../../..', import.meta.url).pathname;
let registry: RunningRegistry | undefined;
let work = '';
let builds = 0;

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'ukc-e2e-rootfs-files-'));
  registry = await startUkcRegistry(ROOT);
  await publishOfficialRuntimes(new RegistryClient({ host: registry.host }));
});

after(async () => {
  await registry?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

async function appTree(dir: string): Promise<void> {
  await mkdir(join(dir, 'app'), { recursive: true });
  await mkdir(join(dir, 'etc'), { recursive: true });
  await writeFile(join(dir, 'app', 'main.sh'), 'echo hi\n');
  await writeFile(join(dir, 'etc', 'hosts'), '10.0.0.1 app\n');
}

async function buildWith(name: string, rootfs: string, format: 'erofs' | 'cpio'): Promise<{ digest: string; root: string }> {
  const p = join(work, name);
  await writeFile(join(p, 'Kraftfile'), `spec: v0.6\nname: ${name}\nruntime: base-compat:latest\nrootfs: ${rootfs}\ncmd: ["/app/main.sh"]\n`);
  const out = join(work, `${name}-${format}.oci.tar`);
  const res = await buildProject({ dir: p, cwd: work, output: out, cacheDir: join(work, `cache-${name}`), registry: registry!.host, rootfsFormat: format });
  const n = ++builds;
  const initrd = join(work, `${name}-${format}-${n}.initrd`);
  await writeFile(initrd, await readFile(res.image.initrd.path));
  const root = join(work, `${name}-${format}-${n}-root`);
  if (format === 'erofs') execFileSync('fsck.erofs', [`--extract=${root}`, initrd]);
  else {
    await mkdir(root);
    execFileSync('cpio', ['-i', '-d', '--quiet', '-D', root, '-F', initrd]);
  }
  return { digest: res.manifestDigest, root };
}

async function assertLayered(root: string): Promise<void> {
  assert.equal(await readFile(join(root, 'app', 'main.sh'), 'utf8'), 'echo hi\n');
  assert.match(await readFile(join(root, 'etc', 'passwd'), 'utf8'), /^root:x:0:0:/, "the runtime's base rootfs is under the app's");
  assert.equal(await readFile(join(root, 'etc', 'hosts'), 'utf8'), '10.0.0.1 app\n', "the app's file wins over the base's");
}

test('an EROFS rootfs with a runtime is extracted, laid over the base rootfs and re-made, reproducibly', async () => {
  const p = join(work, 'erofsapp');
  await appTree(join(work, 'erofs-tree'));
  await mkdir(p);
  execFileSync('mkfs.erofs', ['--quiet', join(p, 'rootfs.erofs'), join(work, 'erofs-tree')]);
  const a = await buildWith('erofsapp', './rootfs.erofs', 'erofs');
  await assertLayered(a.root);
  await rm(join(work, 'cache-erofsapp'), { recursive: true, force: true });
  const b = await buildWith('erofsapp', './rootfs.erofs', 'erofs');
  assert.equal(b.digest, a.digest);
  const c = await buildWith('erofsapp', './rootfs.erofs', 'cpio');
  await assertLayered(c.root);
});

test('a CPIO rootfs with a runtime is laid over the base rootfs', async () => {
  const p = join(work, 'cpioapp');
  await appTree(join(work, 'cpio-tree'));
  await mkdir(p);
  const list = execFileSync('find', ['.', '-mindepth', '1'], { cwd: join(work, 'cpio-tree'), encoding: 'utf8' });
  execFileSync('cpio', ['-o', '-H', 'newc', '--quiet', '-O', join(p, 'rootfs.cpio')], { cwd: join(work, 'cpio-tree'), input: list });
  const a = await buildWith('cpioapp', './rootfs.cpio', 'erofs');
  await assertLayered(a.root);
});
