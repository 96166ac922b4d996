// Interop with a real client: skopeo pushes an umoci-made OCI layout to our registry,
// pulls it back byte-identical, inspects, re-tags without re-sending blobs, deletes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { digestOf } from '../../src/oci/digest.js';
import { rawRequest, startTestRegistry } from '../../src/registry/testkit.js';

const run = promisify(execFile);

async function layoutManifestDigest(dir: string): Promise<string> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  return index.manifests[0]!.digest;
}

test('skopeo push, pull back, inspect, retag without re-upload, delete', { timeout: 120_000 }, async (t) => {
  if (!existsSync('/usr/bin/skopeo') || !existsSync('/usr/bin/umoci')) {
    t.skip('skopeo or umoci not installed');
    return;
  }
  const work = await mkdtemp(join(tmpdir(), 'ukc-skopeo-'));
  const reg = await startTestRegistry();
  try {
    const img = join(work, 'img');
    await run('umoci', ['init', '--layout', img]);
    await run('umoci', ['new', '--image', `${img}:v1`]);
    const bundle = join(work, 'bundle');
    await run('umoci', ['unpack', '--rootless', '--image', `${img}:v1`, bundle]);
    await writeFile(join(bundle, 'rootfs', 'hello.txt'), 'hello from ukc\n');
    await run('umoci', ['repack', '--image', `${img}:v1`, bundle]);
    const pushed = await layoutManifestDigest(img);

    const host = reg.url.replace('http://', '');
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${img}:v1`, `docker://${host}/demo/app:v1`]);
    const uploadsAfterV1 = reg.log.filter((e) => e.path.includes('/blobs/uploads/') && e.bytesIn > 0).length;
    assert.ok(uploadsAfterV1 >= 2, 'config and layer were uploaded');

    const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/demo/app:v1`], { encoding: 'buffer' });
    assert.equal(digestOf(raw.stdout as Buffer).text, pushed, 'inspect --raw gives the pushed bytes');

    const out = join(work, 'out');
    await run('skopeo', ['copy', '--src-tls-verify=false', `docker://${host}/demo/app:v1`, `oci:${out}:v1`]);
    assert.equal(await layoutManifestDigest(out), pushed, 'pulled manifest digest is byte-identical');

    // A second tag of the same image: skopeo finds every blob present and sends none.
    const before = reg.log.length;
    await run('skopeo', ['copy', '--dest-tls-verify=false', '--preserve-digests', `oci:${img}:v1`, `docker://${host}/demo/app:v2`]);
    const second = reg.log.slice(before);
    assert.equal(second.filter((e) => e.path.includes('/blobs/uploads/') && e.bytesIn > 0).length, 0, 'no blob re-sent');
    assert.ok(second.some((e) => e.method === 'PUT' && e.path === '/v2/demo/app/manifests/v2' && e.status === 201));
    const tags = JSON.parse((await rawRequest(reg.url, 'GET', '/v2/demo/app/tags/list')).body.toString()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['v1', 'v2']);

    await run('skopeo', ['delete', '--tls-verify=false', `docker://${host}/demo/app:v1`]);
    assert.equal((await rawRequest(reg.url, 'GET', `/v2/demo/app/manifests/${pushed}`)).status, 404);
    assert.equal((await rawRequest(reg.url, 'GET', '/v2/demo/app/manifests/v2')).status, 404, 'deleting by digest drops every tag');
  } finally {
    await reg.close();
    await rm(work, { recursive: true, force: true });
  }
});
