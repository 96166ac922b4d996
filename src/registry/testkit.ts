/**
 * Helpers for the registry's own tests (and other parts' tests that need a
 * real registry): a server on a random loopback port over a temp data dir,
 * and small request helpers. Not used by production code.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '../oci/index.js';
import type { RequestLogEntry } from './options.js';
import { silentLogger } from '../log/index.js';
import { startRegistryServer, type RegistryServer, type RegistryServerOptions } from './server.js';

export interface TestRegistry {
  server: RegistryServer;
  url: string;
  dataDir: string;
  log: RequestLogEntry[];
  close(): Promise<void>;
}

export async function startTestRegistry(opts: Omit<RegistryServerOptions, 'onRequest' | 'listen'> = {}): Promise<TestRegistry> {
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'ukc-registry-')));
  const log: RequestLogEntry[] = [];
  const server = await startRegistryServer({
    listen: { host: '127.0.0.1', port: 0 },
    ...opts,
    dataDir,
    onRequest: (e) => log.push(e),
    // Quiet unless the test watches the logs itself.
    ...(opts.logger ? {} : { logger: silentLogger(), logError: () => undefined }),
  });
  return {
    server,
    url: server.url,
    dataDir,
    log,
    async close() {
      await server.close();
      if (opts.dataDir === undefined) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One request over a fresh connection (fetch would hide some headers and forbid some bodies). */
export function rawRequest(
  base: string,
  method: string,
  path: string,
  opts: { headers?: Record<string, string | number>; body?: Buffer | string } = {},
): Promise<RawResponse> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method, headers: opts.headers ?? {}, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

export function errorCode(res: RawResponse): string | undefined {
  try {
    const doc = JSON.parse(res.body.toString()) as { errors?: { code?: string }[] };
    return doc.errors?.[0]?.code;
  } catch {
    return undefined;
  }
}

/** Pushes a blob with POST + PUT ?digest= (with `headers`, e.g. Authorization) and answers its digest. */
export async function pushBlob(base: string, repo: string, data: Buffer | string, headers: Record<string, string> = {}): Promise<string> {
  const digest = digestOf(data).text;
  const start = await rawRequest(base, 'POST', `/v2/${repo}/blobs/uploads/`, { headers });
  if (start.status !== 202) throw new Error(`POST upload: ${start.status} ${start.body.toString()}`);
  const loc = String(start.headers.location);
  const put = await rawRequest(base, 'PUT', `${loc}?digest=${digest}`, {
    body: data,
    headers: { ...headers, 'Content-Type': 'application/octet-stream' },
  });
  if (put.status !== 201) throw new Error(`PUT upload: ${put.status} ${put.body.toString()}`);
  return digest;
}

/** Pushes config + one layer + an OCI image manifest; answers the manifest's bytes and digest. */
export async function pushImage(
  base: string,
  repo: string,
  tag: string,
  extra: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<{ digest: string; bytes: Buffer; config: string; layer: string }> {
  const configBytes = JSON.stringify({ architecture: 'x86_64', os: 'kraftcloud', rootfs: { type: 'layers', diff_ids: [] }, tag });
  const layerBytes = `layer of ${repo}:${tag}`;
  const config = await pushBlob(base, repo, configBytes, headers);
  const layer = await pushBlob(base, repo, layerBytes, headers);
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: Buffer.byteLength(configBytes) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: Buffer.byteLength(layerBytes) }],
    ...extra,
  };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const res = await rawRequest(base, 'PUT', `/v2/${repo}/manifests/${tag}`, {
    body: bytes,
    headers: { ...headers, 'Content-Type': 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (res.status !== 201) throw new Error(`PUT manifest: ${res.status} ${res.body.toString()}`);
  return { digest: digestOf(bytes).text, bytes, config, layer };
}

/**
 * Starts a single-request blob upload (`POST ?digest=`, Content-Length `size`), sends half
 * of it and stalls. Answers how the server ended it: `cut` with the ms it took, once the
 * connection closes or an answer arrives; `held` when it is still open after `waitMs`.
 */
export function stallMidBlob(
  base: string,
  repo: string,
  headers: Record<string, string> = {},
  waitMs = 10_000,
  size = 1024 * 1024,
): Promise<{ outcome: 'cut' | 'held'; ms: number; status?: number }> {
  const data = Buffer.alloc(size, 3);
  const url = new URL(`/v2/${repo}/blobs/uploads/?digest=${digestOf(data).text}`, base);
  return new Promise((resolve) => {
    const started = Date.now();
    const req = httpRequest(url, { method: 'POST', headers: { ...headers, 'Content-Length': size }, agent: false });
    let settled = false;
    const done = (outcome: 'cut' | 'held', status?: number): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve({ outcome, ms: Date.now() - started, ...(status !== undefined ? { status } : {}) });
    };
    const timer = setTimeout(() => done('held'), waitMs);
    req.on('response', (res) => {
      res.resume();
      done('cut', res.statusCode);
    });
    req.on('error', () => done('cut'));
    req.on('close', () => done('cut'));
    req.write(data.subarray(0, size / 2));
  });
}
