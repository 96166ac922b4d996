/**
 * TEST DOUBLE — used only by the client's tests. A small in-memory OCI
 * registry over node:http with hooks to inject failures (auth challenges,
 * dropped connections, corrupt content, redirects). Not a registry to run.
 */
import { createHash, randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import type { BlobSource } from './registry-client.js';

export interface SeenRequest {
  method: string;
  url: string;
  authorization: string | undefined;
  headers: http.IncomingHttpHeaders;
}

/** A hook answers true when it handled (responded to) the request itself. */
export type Hook = (req: IncomingMessage, res: ServerResponse, fake: FakeRegistry) => boolean | Promise<boolean>;

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts)));
    req.on('error', reject);
  });
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
}

export class FakeRegistry {
  readonly server: http.Server;
  readonly seen: SeenRequest[] = [];
  readonly blobs = new Map<string, Buffer>();
  /** `repo@digest` links: which repository may see which blob. */
  readonly links = new Set<string>();
  readonly manifests = new Map<string, { bytes: Buffer; type: string }>();
  readonly uploads = new Map<string, { repo: string; data: Buffer }>();
  hooks: Hook[] = [];
  /** When set, requests under /v2/ without this Authorization get `challenge`. */
  requireAuth: { authorization: string; challenge: string } | undefined;
  tagPageSize = 0;

  constructor() {
    this.server = http.createServer((req, res) => {
      void this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) sendError(res, 500, 'UNKNOWN', String(err));
        else res.destroy();
      });
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    return this;
  }

  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  putBlob(repo: string, data: Buffer): string {
    const d = sha256(data);
    this.blobs.set(d, data);
    this.links.add(`${repo}@${d}`);
    return d;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, headers: req.headers });
    for (const hook of this.hooks) if (await hook(req, res, this)) return;
    const url = new URL(req.url ?? '/', this.base);
    const path = url.pathname;
    if (this.requireAuth && path.startsWith('/v2/') && req.headers.authorization !== this.requireAuth.authorization) {
      await readAll(req);
      res.writeHead(401, { 'www-authenticate': this.requireAuth.challenge, 'content-type': 'application/json' });
      res.end(JSON.stringify({ errors: [{ code: 'UNAUTHORIZED', message: 'authentication required' }] }));
      return;
    }
    if (path === '/v2/') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    let m: RegExpExecArray | null;
    if ((m = /^\/v2\/(.+)\/blobs\/uploads\/([^/]*)$/.exec(path))) return this.upload(req, res, m[1] as string, m[2] as string, url);
    if ((m = /^\/v2\/(.+)\/blobs\/(sha256:[a-f0-9]{64})$/.exec(path))) return this.blob(req, res, m[1] as string, m[2] as string);
    if ((m = /^\/v2\/(.+)\/manifests\/([^/]+)$/.exec(path))) return this.manifest(req, res, m[1] as string, m[2] as string);
    if ((m = /^\/v2\/(.+)\/tags\/list$/.exec(path))) return this.tags(res, m[1] as string, url);
    sendError(res, 404, 'NOT_FOUND', 'no route');
  }

  private blob(req: IncomingMessage, res: ServerResponse, repo: string, digest: string): void {
    const data = this.blobs.get(digest);
    if (!data || !this.links.has(`${repo}@${digest}`)) return sendError(res, 404, 'BLOB_UNKNOWN', 'blob unknown');
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range) {
      const start = Number(range[1]);
      res.writeHead(206, { 'content-length': data.length - start, 'content-range': `bytes ${start}-${data.length - 1}/${data.length}` });
      res.end(req.method === 'HEAD' ? undefined : data.subarray(start));
      return;
    }
    res.writeHead(200, { 'content-length': data.length, 'docker-content-digest': digest });
    res.end(req.method === 'HEAD' ? undefined : data);
  }

  private async upload(req: IncomingMessage, res: ServerResponse, repo: string, id: string, url: URL): Promise<void> {
    const method = req.method;
    if (method === 'POST' && id === '') {
      const mount = url.searchParams.get('mount');
      const from = url.searchParams.get('from');
      await readAll(req);
      if (mount && from && this.links.has(`${from}@${mount}`)) {
        this.links.add(`${repo}@${mount}`);
        res.writeHead(201, { location: `/v2/${repo}/blobs/${mount}`, 'docker-content-digest': mount }).end();
        return;
      }
      const uuid = randomUUID();
      this.uploads.set(uuid, { repo, data: Buffer.alloc(0) });
      res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${uuid}`, range: '0-0' }).end();
      return;
    }
    const session = this.uploads.get(id);
    if (!session || session.repo !== repo) return sendError(res, 404, 'BLOB_UPLOAD_UNKNOWN', 'upload unknown');
    const rangeHeader = (): string => (session.data.length === 0 ? '0-0' : `0-${session.data.length - 1}`);
    if (method === 'GET') {
      res.writeHead(204, { location: `/v2/${repo}/blobs/uploads/${id}`, range: rangeHeader() }).end();
      return;
    }
    if (method === 'PATCH') {
      const cr = /^(\d+)-(\d+)$/.exec(String(req.headers['content-range'] ?? ''));
      if (cr && Number(cr[1]) !== session.data.length) {
        await readAll(req);
        res.writeHead(416, { location: `/v2/${repo}/blobs/uploads/${id}`, range: rangeHeader() }).end();
        return;
      }
      // Append as bytes arrive, so a dropped connection leaves a partial chunk (like real registries).
      await new Promise<void>((resolve) => {
        req.on('data', (c: Buffer) => {
          session.data = Buffer.concat([session.data, c]);
        });
        req.on('end', resolve);
        req.on('close', resolve);
      });
      if (res.destroyed) return;
      res.writeHead(202, { location: `/v2/${repo}/blobs/uploads/${id}`, range: rangeHeader() }).end();
      return;
    }
    if (method === 'PUT') {
      const body = await readAll(req);
      const data = Buffer.concat([session.data, body]);
      const want = url.searchParams.get('digest') ?? '';
      if (sha256(data) !== want) return sendError(res, 400, 'DIGEST_INVALID', 'digest mismatch');
      this.uploads.delete(id);
      this.blobs.set(want, data);
      this.links.add(`${repo}@${want}`);
      res.writeHead(201, { location: `/v2/${repo}/blobs/${want}`, 'docker-content-digest': want }).end();
      return;
    }
    sendError(res, 405, 'UNSUPPORTED', 'method');
  }

  private async manifest(req: IncomingMessage, res: ServerResponse, repo: string, ref: string): Promise<void> {
    const key = `${repo}:${ref}`;
    if (req.method === 'PUT') {
      const bytes = await readAll(req);
      const digest = sha256(bytes);
      const entry = { bytes, type: String(req.headers['content-type']) };
      this.manifests.set(key, entry);
      this.manifests.set(`${repo}:${digest}`, entry);
      res.writeHead(201, { location: `/v2/${repo}/manifests/${digest}`, 'docker-content-digest': digest }).end();
      return;
    }
    const entry = this.manifests.get(key);
    if (!entry) return sendError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    res.writeHead(200, { 'content-type': entry.type, 'content-length': entry.bytes.length, 'docker-content-digest': sha256(entry.bytes) });
    res.end(req.method === 'HEAD' ? undefined : entry.bytes);
  }

  private tags(res: ServerResponse, repo: string, url: URL): void {
    const all = [...this.manifests.keys()]
      .filter((k) => k.startsWith(`${repo}:`) && !k.slice(repo.length + 1).startsWith('sha256:'))
      .map((k) => k.slice(repo.length + 1))
      .sort();
    const n = Number(url.searchParams.get('n') ?? this.tagPageSize) || all.length;
    const last = url.searchParams.get('last');
    const rest = last ? all.filter((t) => t > last) : all;
    const page = rest.slice(0, n);
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (rest.length > n) headers.link = `</v2/${repo}/tags/list?n=${n}&last=${page[page.length - 1]}>; rel="next"`;
    res.writeHead(200, headers).end(JSON.stringify({ name: repo, tags: page }));
  }
}

export function bufferSource(data: Buffer): BlobSource {
  return { size: data.length, open: () => Readable.from([data]) };
}

export async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

/** A second server, reached as `localhost` (another host name than 127.0.0.1), recording what reaches it. */
export async function otherHost(
  handler: http.RequestListener,
): Promise<{ server: http.Server; port: number; seen: http.IncomingHttpHeaders[] }> {
  const seen: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    seen.push(req.headers);
    handler(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port, seen };
}

export function closeServer(server: http.Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((r) => server.close(() => r()));
}
