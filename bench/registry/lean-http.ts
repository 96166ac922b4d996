/**
 * The benchmark's own HTTP client path: node:http with one keep-alive agent,
 * bodies piped straight from a file or generator, responses counted and
 * discarded — kept minimal so the client is not what gets measured.
 */
import { createReadStream } from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';

export const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

export interface LeanResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** Bytes of body received (the body itself is discarded unless `keep`). */
  bytes: number;
  body?: Buffer;
}

export function request(
  method: string,
  url: string,
  options: { headers?: Record<string, string>; body?: Buffer | Readable; length?: number; keep?: boolean } = {},
): Promise<LeanResponse> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { ...options.headers };
    if (Buffer.isBuffer(options.body)) headers['content-length'] = String(options.body.length);
    else if (options.length !== undefined) headers['content-length'] = String(options.length);
    else if (!options.body && method !== 'GET' && method !== 'HEAD') headers['content-length'] = '0';
    const req = http.request(url, { method, headers, agent }, (res) => {
      let bytes = 0;
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => {
        bytes += c.length;
        if (options.keep) parts.push(c);
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, bytes, body: options.keep ? Buffer.concat(parts) : undefined }));
      res.on('error', reject);
    });
    req.on('error', reject);
    const body = options.body;
    if (body === undefined) req.end();
    else if (Buffer.isBuffer(body)) req.end(body);
    else {
      body.on('error', (e) => req.destroy(e));
      body.pipe(req);
    }
  });
}

function expectStatus(r: LeanResponse, want: number, what: string): void {
  if (r.status !== want) throw new Error(`${what}: HTTP ${r.status}, wanted ${want}`);
}

/** POST an upload session, then PUT the whole body with ?digest=; answers elapsed seconds. */
export async function pushMonolithic(
  base: string,
  repo: string,
  digest: string,
  size: number,
  body: () => Readable | Buffer,
): Promise<number> {
  const t0 = process.hrtime.bigint();
  const post = await request('POST', `${base}/v2/${repo}/blobs/uploads/`);
  expectStatus(post, 202, 'POST upload');
  const loc = new URL(String(post.headers.location), base);
  loc.searchParams.set('digest', digest);
  const put = await request('PUT', loc.href, { body: body(), length: size, headers: { 'content-type': 'application/octet-stream' } });
  expectStatus(put, 201, 'PUT upload');
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export function fileBody(path: string): () => Readable {
  return () => createReadStream(path, { highWaterMark: 1 << 20 });
}

/** A stream of `total` bytes repeating `block` (for big blobs that never touch disk). */
export function repeatingBody(block: Buffer, total: number): () => Readable {
  return () =>
    Readable.from(
      (function* () {
        let left = total;
        while (left > 0) {
          const n = Math.min(left, block.length);
          yield n === block.length ? block : block.subarray(0, n);
          left -= n;
        }
      })(),
    );
}

/** GETs a blob, discarding it; answers [elapsed seconds, bytes]. */
export async function pullBlob(base: string, repo: string, digest: string): Promise<[number, number]> {
  const t0 = process.hrtime.bigint();
  const r = await request('GET', `${base}/v2/${repo}/blobs/${digest}`);
  expectStatus(r, 200, 'GET blob');
  return [Number(process.hrtime.bigint() - t0) / 1e9, r.bytes];
}

export async function putManifest(base: string, repo: string, tag: string, bytes: Buffer, mediaType: string): Promise<void> {
  const r = await request('PUT', `${base}/v2/${repo}/manifests/${tag}`, { body: bytes, headers: { 'content-type': mediaType } });
  expectStatus(r, 201, 'PUT manifest');
}
