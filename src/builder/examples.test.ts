// The docs' two Python examples (test/fixtures/python-*): they load, parse, plan and
// resolve their COPY sources as the build will need them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import {
  loadDockerignore,
  loadKraftfile,
  parseDockerfile,
  planBuild,
  resolveCopySources,
  resolveStages,
  type CopyStep,
  type ImageConfig,
} from './index.js';

// dist/src/builder/ → repository root.
const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

const PYTHON_312: ImageConfig = {
  Env: ['PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin', 'LANG=C.UTF-8', 'PYTHON_VERSION=3.12.7'],
  Cmd: ['python3'],
};

async function load(name: string) {
  const kraftfile = await loadKraftfile(join(FIXTURES, name));
  const rootfs = kraftfile.rootfsResolved;
  assert.ok(rootfs?.kind === 'dockerfile');
  const parsed = parseDockerfile(await readFile(rootfs.dockerfile, 'utf8'), rootfs.dockerfile);
  return { kraftfile, rootfs, parsed };
}

test('example: base-compat runtime with a multi-stage python:3.12 → scratch Dockerfile', async () => {
  const { kraftfile, rootfs, parsed } = await load('python-base-compat');
  assert.equal(kraftfile.spec, 'v0.6');
  assert.equal(kraftfile.runtime, 'base-compat:latest');
  assert.deepEqual(kraftfile.cmd, ['/usr/bin/python3', '/src/server.py']);
  assert.equal(rootfs.context, join(FIXTURES, 'python-base-compat'));

  const plan = planBuild(parsed);
  assert.deepEqual(plan.order, [0, 1]);
  assert.deepEqual(plan.imageRefs, ['python:3.12']);
  assert.equal(plan.stages[0]?.name, 'build');
  const [build, final] = resolveStages(plan, (ref) => {
    assert.equal(ref, 'python:3.12');
    return PYTHON_312;
  });
  assert.deepEqual(build?.config, PYTHON_312);
  assert.equal(final?.fromScratch, true);
  assert.deepEqual(final?.config, {}, 'scratch starts with an empty config and COPY never changes it');
  assert.deepEqual(final?.warnings, []);

  const steps = final?.steps as CopyStep[];
  assert.ok(steps.every((s) => s.kind === 'copy'));
  const fromBuild = steps.filter((s) => s.from.kind === 'stage');
  assert.equal(fromBuild.length, 7);
  assert.ok(fromBuild.every((s) => s.from.kind === 'stage' && s.from.index === 0));
  const libs = fromBuild.find((s) => s.sources.length === 3);
  assert.deepEqual(libs?.sources.map((s) => (s.kind === 'path' ? s.path : '')), [
    '/lib/x86_64-linux-gnu/libc.so.6',
    '/lib/x86_64-linux-gnu/libm.so.6',
    '/lib/x86_64-linux-gnu/libz.so.1',
  ]);
  assert.equal(libs?.dest, '/lib/x86_64-linux-gnu');
  assert.equal(libs?.destIsDir, true);

  const app = steps[steps.length - 1] as CopyStep;
  assert.deepEqual(app.from, { kind: 'context' });
  const ops = await resolveCopySources({
    root: rootfs.context,
    filter: await loadDockerignore(rootfs.context, rootfs.dockerfile),
    sources: app.sources.map((s) => (s.kind === 'path' ? s.path : '')),
    dest: app.dest,
    destIsDir: app.destIsDir,
  });
  assert.deepEqual(ops, [{ kind: 'file', source: join(rootfs.context, 'server.py'), dest: '/src/server.py', placeIntoExistingDir: 'server.py' }]);
});

test('example: python:3.12 runtime with a scratch Dockerfile holding only the script', async () => {
  const { kraftfile, parsed } = await load('python-runtime');
  assert.equal(kraftfile.spec, 'v0.5');
  assert.equal(kraftfile.runtime, 'python:3.12');
  assert.deepEqual(kraftfile.cmd, ['/src/server.py']);
  const plan = planBuild(parsed);
  assert.deepEqual(plan.order, [0]);
  assert.deepEqual(plan.imageRefs, []);
  const [only] = resolveStages(plan, () => assert.fail('no base image is needed'));
  assert.equal(only?.steps.length, 1);
  assert.deepEqual(only?.config, {});
});
