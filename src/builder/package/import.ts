/**
 * `unikraft images import`: turns a root filesystem (a directory, or a tar /
 * tar.gz of one) into a plain OCI image (os linux, architecture amd64, one
 * layer, gzip or uncompressed) usable in a Dockerfile's FROM. Reproducible: the
 * layer is written by src/oci's canonical tar writer with mtimes clamped to
 * SOURCE_DATE_EPOCH, gzip with a fixed level (Node writes header mtime 0), and
 * the config/manifest with a fixed key order.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, stat } from 'node:fs/promises';
import { removeTree } from '../../util/index.js';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { PassThrough } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlibConstants } from 'node:zlib';
import { Digester } from '../../oci/index.js';
import { MediaType } from '../../oci/index.js';
import { tarDirectory } from '../../oci/index.js';
import { extractTar } from '../../oci/index.js';
import type { BlobDir, StoredBlob } from './blobs.js';
import { isoFromEpoch, sortedRecord } from './config.js';
import type { ImageBlobs } from './output.js';

export interface ImportOptions {
  blobs: BlobDir;
  epoch: number;
  compression: 'gzip' | 'none';
  env?: string[];
  cmd?: string[];
  entrypoint?: string[];
  workingDir?: string;
  labels?: Record<string, string>;
  architecture?: string;
  os?: string;
  /** Annotation org.opencontainers.image.ref.name. */
  refName?: string;
}

export interface ImportedImage extends ImageBlobs {
  layer: StoredBlob;
  diffId: string;
}

/** Imports `source` (directory or tarball) as an OCI image into `opts.blobs`. */
export async function importRootfs(source: string, opts: ImportOptions): Promise<ImportedImage> {
  const st = await stat(source);
  if (st.isDirectory()) return importDirectory(source, opts);
  const tmp = await mkdtemp(join(tmpdir(), 'ukc-import-'));
  try {
    await extractTar(join(tmp, 'root'), createReadStream(source), { mode: 'plain', compression: 'auto', preserveOwners: true });
    return await importDirectory(join(tmp, 'root'), opts);
  } finally {
    // Not fs.rm({ recursive }): it holds one pending removal per entry (see removeTree).
    await removeTree(tmp);
  }
}

async function importDirectory(dir: string, opts: ImportOptions): Promise<ImportedImage> {
  const diff = new Digester();
  const tarStream = tarDirectory(dir, { sourceDateEpoch: opts.epoch });
  const out = new PassThrough();
  const stored = opts.blobs.putStream(out);
  const stages =
    opts.compression === 'gzip'
      ? pipeline(
          tarStream,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const c of chunks) {
              diff.update(c);
              yield c;
            }
          },
          createGzip({ level: zlibConstants.Z_BEST_SPEED }),
          out,
        )
      : pipeline(
          tarStream,
          async function* (chunks: AsyncIterable<Buffer>) {
            for await (const c of chunks) {
              diff.update(c);
              yield c;
            }
          },
          out,
        );
  await stages;
  const layer = await stored;
  const diffId = diff.digest().text;
  const config: Record<string, unknown> = {};
  if (opts.env) config.Env = opts.env;
  if (opts.entrypoint) config.Entrypoint = opts.entrypoint;
  if (opts.cmd) config.Cmd = opts.cmd;
  if (opts.workingDir) config.WorkingDir = opts.workingDir;
  config.Labels = sortedRecord(opts.labels ?? {});
  const configDoc = {
    created: isoFromEpoch(opts.epoch),
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    config,
    rootfs: { type: 'layers', diff_ids: [diffId] },
  };
  const configBlob = await opts.blobs.putBytes(JSON.stringify(configDoc));
  const manifestDoc: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: { mediaType: MediaType.OciConfig, digest: configBlob.digest.text, size: configBlob.size },
    layers: [{ mediaType: opts.compression === 'gzip' ? MediaType.OciLayerGzip : MediaType.OciLayerTar, digest: layer.digest.text, size: layer.size }],
  };
  const annotations: Record<string, string> = { 'org.opencontainers.image.created': isoFromEpoch(opts.epoch) };
  if (opts.refName) annotations['org.opencontainers.image.ref.name'] = opts.refName;
  manifestDoc.annotations = sortedRecord(annotations);
  const manifest = await opts.blobs.putBytes(JSON.stringify(manifestDoc));
  return { manifest, manifestMediaType: MediaType.OciManifest, blobs: [configBlob, layer], layer, diffId };
}
