// End to end (issue 17): an image copied by a standard tool runs. The busybox httpd
// image is built and pushed uncompressed (Unikraft's layout), then `skopeo copy`
// copies it to other repositories, which re-encodes its layers as gzip (skopeo's
// default towards a registry) and as zstd (`--dest-compress-format zstd`). A node
// that has never seen any of them pulls each copy at create, decompresses its
// layers once into its cache, and the instances serve their page. An image whose
// rootfs layer is an ordinary container layer is refused at create with the
// layer named, in the API's envelope, never a 500.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { api, buildAndPush, busyboxRootfs, cleanupEnv, fetchText, newEnv, startCentral, startNode, stopDaemon, waitInstance, type Daemon, type Instance } from './node-support.js';
import { RegistryClient, pushImage } from '../../src/client/index.js';
import { digestOf } from '../../src/oci/digest.js';
import { encodeTarHeader } from '../../src/oci/tar.js';

const run = promisify(execFile);
const HTTPD = ['/bin/busybox', 'httpd', '-f', '-p', '8080', '-h', '/www'];

async function rawManifest(host: string, ref: string): Promise<{ layers: { mediaType: string; digest: string }[] }> {
  const { stdout } = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${host}/${ref}`]);
  return JSON.parse(stdout) as { layers: { mediaType: string; digest: string }[] };
}

test('images re-encoded by skopeo copy (gzip, zstd) run on a node that never saw them', { timeout: 240_000 }, async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  if (!existsSync('/usr/bin/skopeo')) return t.skip('skopeo not installed');
  const env = newEnv('node-compressed');
  let central: Daemon | undefined;
  let node: Daemon | undefined;
  try {
    central = await startCentral(env);
    const host = new URL(central.url).host;
    const page = '<h1>copied by skopeo</h1>\n';
    const original = await buildAndPush(env, busyboxRootfs(env.dir, page), central.url, 'alice/httpd', 'latest', HTTPD);
    const plain = await rawManifest(host, 'alice/httpd:latest');
    assert.ok(plain.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar'), 'built uncompressed');

    // skopeo (1.9) remembers where it saw each blob, per registry host, and mounts or
    // substitutes a known one rather than re-encode it; each copy therefore names the
    // registry by a host spelling it has not met yet (127.0.0.1 vs localhost).
    const port = new URL(central.url).port;
    const copies: Array<{ repo: string; dest: string; args: string[]; mediaType: string }> = [
      { repo: 'bob/httpd-gzip', dest: `localhost:${port}`, args: [], mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' },
      { repo: 'bob/httpd-zstd', dest: host, args: ['--dest-compress-format', 'zstd'], mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd' },
    ];
    for (const c of copies) {
      await run('skopeo', ['copy', '--src-tls-verify=false', '--dest-tls-verify=false', ...c.args, `docker://localhost:${port}/alice/httpd:latest`, `docker://${c.dest}/${c.repo}:latest`]);
      const m = await rawManifest(host, `${c.repo}:latest`);
      assert.ok(m.layers.length >= 1 && m.layers.every((l) => l.mediaType === c.mediaType), `${c.repo}: ${JSON.stringify(m.layers)}`);
      assert.ok(m.layers.every((l) => !plain.layers.some((p) => p.digest === l.digest)), `${c.repo}: every layer was re-encoded`);
    }

    node = await startNode(env, central.url);
    for (const [i, c] of copies.entries()) {
      const name = `copy${i}`;
      const created = await api(node.url, 'POST', '/v1/instances', { name, image: `${c.repo}:latest`, memory_mb: 64, autostart: true, timeout_s: 30 });
      assert.equal(created.status, 200, `${c.repo}: ${JSON.stringify(created.body)}`);
      const image = (created.body.data?.instances as Instance[])[0]?.image as string;
      assert.ok(image.startsWith(`${c.repo}@sha256:`) && !image.endsWith(original.digest), image);
      const running = await waitInstance(node.url, name, (x) => x.state === 'running' && typeof x.private_ip === 'string');
      assert.equal(await fetchText(`http://${running.private_ip as string}:8080/`), page, c.repo);
    }
    // Decompressed once per layer into the cache: two ready entries (one per copy's initrd layer), no temp left.
    const cache = await readdir(join(env.dir, 'node', 'rootfs'));
    assert.equal(cache.filter((n) => n.endsWith('.ready')).length, 2, cache.join(','));
    assert.ok(!cache.some((n) => n.startsWith('.tmp-')), cache.join(','));

    // An image whose rootfs layer is an ordinary container layer: refused at create, layer named, 400 envelope.
    const client = new RegistryClient({ baseUrl: central.url });
    try {
      const body = Buffer.from('root:x:0:0::/root:/bin/sh\n');
      const tar = gzipSync(Buffer.concat([encodeTarHeader({ type: 'file', name: 'etc/passwd', size: body.length, source: body }), body, Buffer.alloc(512 - body.length), Buffer.alloc(1024)]));
      const config = Buffer.from(JSON.stringify({ architecture: 'x86_64', os: 'linux', config: { Cmd: ['/bin/sh'] }, rootfs: { type: 'layers', diff_ids: [] } }));
      const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digestOf(tar).text, size: tar.length };
      const cfg = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config).text, size: config.length };
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: cfg, layers: [layer] }));
      await pushImage({
        client,
        repository: 'bob/container',
        tag: 'latest',
        manifest: { bytes: manifest, mediaType: 'application/vnd.oci.image.manifest.v1+json' },
        blobs: (d) => {
          const bytes = d.digest === layer.digest ? tar : config;
          return { size: bytes.length, open: () => Readable.from([bytes]) };
        },
      });
      const refused = await api(node.url, 'POST', '/v1/instances', { name: 'container', image: 'bob/container:latest', memory_mb: 64, autostart: true });
      assert.equal(refused.status, 400, JSON.stringify(refused.body));
      assert.equal(refused.body.status, 'error');
      assert.match(refused.body.message ?? '', new RegExp(`layer ${layer.digest.slice(0, 'sha256:'.length + 12)}: is not a Unikraft kernel or initrd layer`));
      assert.ok(!(await readdir(join(env.dir, 'node', 'rootfs'))).some((n) => n.startsWith('.tmp-') || n.startsWith(layer.digest.slice(7))), 'no cache entry for the refused layer');
    } finally {
      client.close();
    }
  } finally {
    await stopDaemon(node);
    await stopDaemon(central);
    await cleanupEnv(env);
  }
});
