/** Small HTTP helpers shared by the handlers: the request context, bodies, JSON answers, paging links. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ByteRange } from '../store/index.js';
import type { Principal, RegistryAccessControl } from './auth.js';
import { RegistryError } from './errors.js';
import type { RegistryLimits } from './options.js';
import type { RegistryService } from './service.js';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  method: string;
  /** Path captures of the route, after the repository name. */
  params: string[];
  /** The repository name, already checked against the grammar (empty for base/catalog). */
  repo: string;
  principal: Principal;
  service: RegistryService;
  limits: RegistryLimits;
  access: Required<Pick<RegistryAccessControl, 'authorize' | 'mayMount'>>;
  /** Counts request body bytes for the request log. */
  bytesIn: { n: number };
}

export type Handler = (ctx: RequestContext) => Promise<void>;

export function sendJson(res: ServerResponse, status: number, body: unknown, contentType = 'application/json', head = false): void {
  const data = Buffer.from(JSON.stringify(body));
  res.statusCode = status;
  res.setHeader('Content-Type', contentType);
  res.setHeader('Content-Length', data.length);
  res.end(head ? undefined : data);
}

export function sendEmpty(res: ServerResponse, status: number, headers: Record<string, string | number> = {}): void {
  res.statusCode = status;
  for (const [k, v] of Object.entries(headers)) res.setHeader(k, v);
  res.setHeader('Content-Length', 0);
  res.end();
}

/** Content-Length as a number, undefined when absent; SIZE_INVALID when malformed. */
export function contentLength(req: IncomingMessage): number | undefined {
  const raw = req.headers['content-length'];
  if (raw === undefined) return undefined;
  if (!/^\d{1,15}$/.test(raw)) throw new RegistryError('SIZE_INVALID', { message: 'malformed Content-Length' });
  return Number(raw);
}

/** True when the request carries a body (a non-zero Content-Length, or chunked encoding). */
export function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  if (len !== undefined) return len !== '0';
  return req.headers['transfer-encoding'] !== undefined;
}

/** Reads a small body whole, refusing more than `max` bytes (413) before buffering it. */
export async function readSmallBody(ctx: RequestContext, max: number, tooLarge: () => RegistryError): Promise<Buffer> {
  const declared = contentLength(ctx.req);
  if (declared !== undefined && declared > max) throw tooLarge();
  const parts: Buffer[] = [];
  let n = 0;
  // destroyOnReturn: false keeps the socket open when we stop early, so the error answer can be read.
  for await (const chunk of ctx.req.iterator({ destroyOnReturn: false })) {
    const buf = chunk as Buffer;
    n += buf.length;
    ctx.bytesIn.n += buf.length;
    if (n > max) throw tooLarge();
    parts.push(buf);
  }
  return Buffer.concat(parts, n);
}

/** Parses an upload `Content-Range: <start>-<end>` (a "bytes " or "bytes=" prefix is tolerated). */
export function parseUploadContentRange(header: string | undefined): ByteRange | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d{1,15})-(\d{1,15})(?:\/(?:\d{1,15}|\*))?$/.exec(header.trim());
  if (!m) throw new RegistryError('RANGE_INVALID', { message: 'malformed Content-Range' });
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new RegistryError('RANGE_INVALID', { message: 'Content-Range ends before it starts' });
  return { start, end };
}

/**
 * Parses a blob `Range: bytes=a-b | a- | -n` for a blob of `size` bytes.
 * Answers undefined for forms we serve whole (absent, multi-range, other units).
 */
export function parseBlobRange(header: string | undefined, size: number): ByteRange | undefined | 'unsatisfiable' {
  if (header === undefined) return undefined;
  const m = /^bytes=(\d{0,15})-(\d{0,15})$/.exec(header.trim());
  if (!m) return undefined;
  const [, a, b] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const n = Number(b);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** Parses paging `n` (a non-negative integer) and `last`; malformed `n` is refused. */
export function parsePaging(url: URL): { n?: number; last?: string } {
  const out: { n?: number; last?: string } = {};
  const n = url.searchParams.get('n');
  if (n !== null) {
    if (!/^\d{1,15}$/.test(n)) throw new RegistryError('UNSUPPORTED', { status: 400, message: 'n must be a non-negative integer' });
    out.n = Number(n);
  }
  const last = url.searchParams.get('last');
  if (last !== null) out.last = last;
  return out;
}

/** `Link: <path?n=..&last=..>; rel="next"` as the spec shows it. */
export function nextLink(path: string, n: number, last: string): string {
  const q = new URLSearchParams({ n: String(n), last });
  return `<${path}?${q.toString()}>; rel="next"`;
}
