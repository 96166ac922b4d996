/**
 * An example of the registry client (src/client) on its own: builds a tiny Unikraft-style image in
 * memory (an OCI manifest whose layers are uncompressed single-file tars,
 * platform kraftcloud/x86_64), pushes it to a registry with RegistryClient,
 * pulls it back into an OCI layout, and prints the digests.
 *
 * Usage: node dist/examples/registry-demo.js HOST:PORT [REPOSITORY[:TAG]]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { digestOf, MediaType, tarChunks } from '../src/oci/index.js';
import { ProgressRenderer, pullImage, pushImage, RegistryClient } from '../src/client/index.js';

/** A tar holding one file, with fixed metadata so the digest is reproducible (src/oci's deterministic writer). */
async function singleFileTar(name: string, content: Buffer): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of tarChunks([{ type: 'file', name, size: content.length, source: content, mode: 0o755, uid: 0, gid: 0, mtime: 0 }])) {
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

export interface DemoImage {
  manifest: Buffer;
  blobs: Map<string, Buffer>;
}

export async function buildDemoImage(): Promise<DemoImage> {
  const kernel = await singleFileTar('unikraft/bin/kernel', Buffer.from('demo kernel placeholder: not a bootable kernel\n'));
  const initrd = await singleFileTar('unikraft/bin/initrd', Buffer.from('070701 demo initrd placeholder\n'));
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'x86_64',
      os: 'kraftcloud',
      config: { Cmd: ['/http_server'], Env: ['PORT=8080'], Labels: { 'ukc.demo': 'true' } },
      rootfs: { type: 'layers', diff_ids: [digestOf(kernel).text, digestOf(initrd).text] },
    }),
  );
  const desc = (mediaType: string, b: Buffer): { mediaType: string; digest: string; size: number } => ({
    mediaType,
    digest: digestOf(b).text,
    size: b.length,
  });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: desc(MediaType.OciConfig, config),
      layers: [desc(MediaType.OciLayerTar, kernel), desc(MediaType.OciLayerTar, initrd)],
    }),
  );
  const blobs = new Map([config, kernel, initrd].map((b) => [digestOf(b).text, b] as const));
  return { manifest, blobs };
}

export interface DemoResult {
  pushed: string;
  pulled: string;
}

/** Pushes the demo image to `host` and pulls it back; writes a short report to `out`. */
export async function runDemo(host: string, reference: string, out: Writable & { isTTY?: boolean }): Promise<DemoResult> {
  const [repository, tag = 'latest'] = reference.split(':') as [string, string?];
  const client = new RegistryClient({ host });
  const work = await mkdtemp(join(tmpdir(), 'ukc-demo-'));
  try {
    await client.ping();
    const image = await buildDemoImage();
    out.write(`pushing ${repository}:${tag} to ${client.base.host}\n`);
    const renderer = new ProgressRenderer(out);
    const pushed = await pushImage({
      client,
      repository,
      tag,
      manifest: { bytes: image.manifest, mediaType: MediaType.OciManifest },
      blobs: (d) => {
        const b = image.blobs.get(d.digest) as Buffer;
        return { size: b.length, open: () => Readable.from([b]) };
      },
      onProgress: renderer.listener,
    });
    renderer.finish();
    out.write(`pushed  ${repository}:${tag} ${pushed.digest.text}\n`);
    const layout = join(work, 'layout');
    const pulled = await pullImage({ client, repository, reference: tag, dir: layout });
    out.write(`pulled  ${repository}:${tag} ${pulled.digest.text} (${pulled.blobs.length} blobs into an OCI layout)\n`);
    for (const b of pulled.blobs) out.write(`  ${b.digest} ${b.size} bytes ${b.mediaType}\n`);
    out.write(`tags of ${repository}: ${(await client.listTags(repository)).join(', ')}\n`);
    if (pushed.digest.text !== pulled.digest.text) throw new Error('pulled digest differs from pushed digest');
    out.write('digests match\n');
    return { pushed: pushed.digest.text, pulled: pulled.digest.text };
  } finally {
    client.close();
    await rm(work, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const [host, reference = 'demo/hello:latest'] = process.argv.slice(2);
  if (!host) {
    process.stderr.write('usage: node dist/examples/registry-demo.js HOST:PORT [REPOSITORY[:TAG]]\n');
    process.exitCode = 2;
  } else {
    runDemo(host, reference, process.stdout).catch((err: unknown) => {
      process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    });
  }
}
