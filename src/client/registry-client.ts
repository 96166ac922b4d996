/**
 * RegistryClient: the OCI Distribution v1.1 client (pull, push, tags,
 * catalog, referrers) over src/client/transport.ts, with token auth,
 * retries, chunked uploads that resume, and mirrors for pulls.
 *
 * Invariants:
 * - Every pulled blob is hashed while it streams; a mismatch (or wrong size)
 *   fails the stream before its end, so a consumer never sees a clean end of
 *   bad content. Manifests fetched by digest are checked against it; by tag,
 *   against Docker-Content-Digest when the registry sends one.
 * - Credentials go only to the configured registry origin (and the token realm
 *   rules of auth.ts); mirrors get only their own credentials.
 * - Descriptor `urls[]` are never fetched: blobs come from registries only.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Digester, digestEquals, digestOf, parseDigest, tryParseDigest, type Digest } from '../oci/index.js';
import { MediaType } from '../oci/index.js';
import { EndpointAuth, type Credentials } from './auth.js';
import {
  DigestMismatchError,
  parseErrorEnvelope,
  PolicyError,
  ProtocolError,
  RegistryClientError,
  RegistryError,
  TransportError,
} from './errors.js';
import { checkRepositoryName, parseManifestRef, refText } from './names.js';
import { ProgressMeter, type ProgressListener } from './progress.js';
import {
  checkTransportPolicy,
  drain,
  isLoopbackHost,
  readBody,
  redactUrl,
  Transport,
  type AgentPair,
  type TransportResponse,
} from './transport.js';

/** A blob to push: its size, and a way to (re)open its bytes from the start. */
export interface BlobSource {
  size: number;
  open(): Readable | Promise<Readable>;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  artifactType?: string;
  platform?: Record<string, unknown>;
}

export interface MirrorOptions {
  baseUrl: string;
  insecure?: boolean;
  credentials?: Credentials;
}

export interface RegistryClientOptions {
  /** `https://registry.example`, `http://127.0.0.1:5000`; or give `host`. */
  baseUrl?: string;
  /** `host[:port]`: https, or plain http for loopback hosts (and when `insecure`). */
  host?: string;
  /** Allow plain HTTP to non-loopback hosts and unverified TLS. Default false. */
  insecure?: boolean;
  credentials?: Credentials;
  /** Token realms on these hosts are trusted besides the registry's own host. */
  allowedTokenHosts?: readonly string[];
  /** Registries tried in order for pulls before the upstream. */
  mirrors?: readonly (string | MirrorOptions)[];
  agents?: AgentPair;
  /** Extra CA certificates (PEM) trusted for this client's HTTPS connections (a private registry's own CA). */
  ca?: string | Buffer | readonly (string | Buffer)[];
  userAgent?: string;
  /** Retries of a failed request or chunk (network errors, 5xx, 429). Default 3. */
  retries?: number;
  /** First retry delay in ms; doubles each time. Default 200. */
  retryDelayMs?: number;
  /** PATCH size for chunked uploads. Default 16 MiB. */
  chunkSize?: number;
  /** Blobs up to this size go in one PUT; larger ones in chunks. Default 64 MiB. */
  monolithicMaxBytes?: number;
  /** Idle socket timeout in ms. Default 60 000. */
  timeoutMs?: number;
  /** Largest manifest accepted, in bytes. Default 4 MiB. */
  maxManifestBytes?: number;
  /** Largest JSON list (tags, catalog, referrers) page, in bytes. Default 8 MiB. */
  maxListBytes?: number;
  /** Most pages followed by tag/catalog/referrer listings. Default 1000. */
  maxPages?: number;
}

export const DEFAULT_RETRIES = 3;
export const DEFAULT_RETRY_DELAY_MS = 200;
export const DEFAULT_CHUNK_SIZE = 16 << 20;
export const DEFAULT_MONOLITHIC_MAX = 64 << 20;
export const DEFAULT_MAX_MANIFEST_BYTES = 4 << 20;
export const DEFAULT_MAX_LIST_BYTES = 8 << 20;
export const DEFAULT_MAX_PAGES = 1000;
const MAX_ERROR_BODY = 64 << 10;

/** Every manifest type this client asks for. */
export const MANIFEST_ACCEPT = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
].join(', ');

export interface FetchedManifest {
  bytes: Buffer;
  mediaType: string;
  digest: Digest;
}

export interface ManifestStat {
  digest: Digest | undefined;
  mediaType: string;
  size: number;
}

export interface PushBlobResult {
  digest: Digest;
  size: number;
  action: 'exists' | 'mounted' | 'uploaded';
}

export interface TransferOptions {
  signal?: AbortSignal;
  onProgress?: ProgressListener;
}

interface Endpoint {
  base: URL;
  auth: EndpointAuth;
  transport: Transport;
}

interface Call {
  method: string;
  url: URL;
  scope: string;
  headers?: Record<string, string>;
  /** A buffer, or a factory re-opening the body for each attempt. */
  body?: Buffer | (() => Readable | Promise<Readable>);
  bodyLength?: number;
  expect: readonly number[];
  /** Retry network errors and 5xx/429. Default true. */
  retry?: boolean;
  signal?: AbortSignal;
}

/** Builds the registry base URL from options, applying decision 7. */
export function resolveBaseUrl(options: { baseUrl?: string; host?: string; insecure?: boolean }): URL {
  let base: URL;
  if (options.baseUrl) {
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new RegistryClientError(`invalid registry URL "${options.baseUrl}"`);
    }
  } else if (options.host) {
    const probe = new URL(`http://${options.host}`);
    const plain = options.insecure === true || isLoopbackHost(probe.hostname);
    base = new URL(`${plain ? 'http' : 'https'}://${options.host}`);
  } else {
    throw new RegistryClientError('RegistryClient needs baseUrl or host');
  }
  if (base.username || base.password) throw new PolicyError('put credentials in `credentials`, not in the URL');
  checkTransportPolicy(base, options.insecure === true);
  base.pathname = '/';
  base.search = '';
  base.hash = '';
  return base;
}

/** Parses an upload `Range` header (`0-N` or `bytes=0-N`) into the count of bytes held. */
export function parseUploadRange(value: string | undefined): number {
  if (value === undefined || value === '') return 0;
  const m = /^(?:bytes=)?0-(\d{1,16})$/.exec(value.trim());
  if (!m) throw new ProtocolError(`malformed upload Range header "${value.slice(0, 100)}"`);
  const end = Number(m[1]);
  // Distribution answers "0-0" for an empty session; treat it as nothing held.
  return end === 0 ? 0 : end + 1;
}

/** The `rel="next"` target of a Link header, if any. */
export function parseNextLink(value: string | undefined): string | undefined {
  if (!value) return undefined;
  for (const part of value.split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /rel="?next"?/i.test(m[2] as string)) return m[1];
  }
  return undefined;
}

export class RegistryClient {
  readonly base: URL;
  private readonly upstream: Endpoint;
  private readonly mirrors: Endpoint[];
  private readonly retries: number;
  private readonly retryDelayMs: number;
  readonly chunkSize: number;
  readonly monolithicMaxBytes: number;
  private readonly maxManifestBytes: number;
  private readonly maxListBytes: number;
  private readonly maxPages: number;
  private readonly transports: Transport[] = [];

  constructor(options: RegistryClientOptions) {
    this.base = resolveBaseUrl(options);
    this.retries = options.retries ?? DEFAULT_RETRIES;
    this.retryDelayMs = options.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS;
    this.chunkSize = options.chunkSize ?? DEFAULT_CHUNK_SIZE;
    this.monolithicMaxBytes = options.monolithicMaxBytes ?? DEFAULT_MONOLITHIC_MAX;
    this.maxManifestBytes = options.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.maxListBytes = options.maxListBytes ?? DEFAULT_MAX_LIST_BYTES;
    this.maxPages = options.maxPages ?? DEFAULT_MAX_PAGES;
    if (!(this.chunkSize > 0)) throw new RegistryClientError('chunkSize must be positive');
    const makeEndpoint = (base: URL, insecure: boolean, credentials: Credentials | undefined): Endpoint => {
      const transport = new Transport({
        insecure,
        agents: options.agents,
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
        userAgent: options.userAgent,
        timeoutMs: options.timeoutMs,
      });
      this.transports.push(transport);
      const auth = new EndpointAuth(base, transport, credentials, { allowedTokenHosts: options.allowedTokenHosts });
      return { base, auth, transport };
    };
    this.upstream = makeEndpoint(this.base, options.insecure === true, options.credentials);
    this.mirrors = (options.mirrors ?? []).map((m) => {
      const mo: MirrorOptions = typeof m === 'string' ? { baseUrl: m } : m;
      const insecure = mo.insecure ?? false;
      return makeEndpoint(resolveBaseUrl({ baseUrl: mo.baseUrl, insecure }), insecure, mo.credentials);
    });
  }

  /** Closes idle sockets; the client stays usable (new sockets open on demand). */
  close(): void {
    for (const t of this.transports) t.close();
  }

  // ---- core request loop ----------------------------------------------------

  private backoff(attempt: number, retryAfter?: string): number {
    const seconds = retryAfter !== undefined ? Number(retryAfter) : NaN;
    if (Number.isFinite(seconds) && seconds >= 0) return Math.min(seconds * 1000, 30_000);
    return this.retryDelayMs * 2 ** attempt;
  }

  private async errorFrom(res: TransportResponse, method: string, url: URL): Promise<RegistryError> {
    let entries: ReturnType<typeof parseErrorEnvelope> = [];
    if (method !== 'HEAD') {
      try {
        entries = parseErrorEnvelope((await readBody(res.body, MAX_ERROR_BODY, 'error body')).toString('utf8'));
      } catch {
        entries = [];
      }
    } else drain(res.body);
    return new RegistryError(res.status, method, redactUrl(url), entries);
  }

  /** One logical request: auth challenge answered once, transient failures retried. */
  private async call(ep: Endpoint, c: Call): Promise<TransportResponse> {
    let authAnswered = false;
    const retry = c.retry ?? true;
    for (let attempt = 0; ; attempt++) {
      c.signal?.throwIfAborted();
      const body = c.body === undefined || Buffer.isBuffer(c.body) ? c.body : await c.body();
      let res: TransportResponse;
      try {
        res = await ep.transport.send({
          method: c.method,
          url: c.url,
          headers: c.headers,
          body,
          bodyLength: c.bodyLength,
          authorization: ep.auth.authorizationFor(c.scope),
          credentialOrigin: ep.base.origin,
          signal: c.signal,
        });
      } catch (err) {
        if (body instanceof Readable) body.destroy();
        if (err instanceof TransportError && retry && attempt < this.retries && !c.signal?.aborted) {
          await sleep(this.backoff(attempt));
          continue;
        }
        throw err;
      }
      if (res.status === 401 && !authAnswered) {
        authAnswered = true;
        if (body instanceof Readable) body.destroy();
        drain(res.body);
        if (await ep.auth.handleChallenge(res.headers['www-authenticate'], c.scope, c.signal)) {
          attempt--;
          continue;
        }
        throw new RegistryError(401, c.method, redactUrl(c.url), [
          { code: 'UNAUTHORIZED', message: 'authentication required and no usable credentials or token' },
        ]);
      }
      if (c.expect.includes(res.status)) return res;
      if ((res.status >= 500 || res.status === 429) && retry && attempt < this.retries) {
        drain(res.body);
        await sleep(this.backoff(attempt, res.headers['retry-after'] as string | undefined));
        continue;
      }
      throw await this.errorFrom(res, c.method, c.url);
    }
  }

  private url(ep: Endpoint, path: string, query?: Record<string, string>): URL {
    const u = new URL(path, ep.base);
    if (query) for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
    return u;
  }

  private location(ep: Endpoint, res: TransportResponse): URL {
    const loc = res.headers.location;
    if (!loc) throw new ProtocolError(`${redactUrl(res.url)}: response without Location`);
    return new URL(loc, ep.base);
  }

  /** Tries mirrors in order, then the upstream; answers the first success. */
  private async fromPullEndpoints<T>(fn: (ep: Endpoint) => Promise<T>): Promise<T> {
    for (const ep of this.mirrors) {
      try {
        return await fn(ep);
      } catch (err) {
        if (err instanceof DigestMismatchError) throw err;
        // A mirror that fails or lacks the content: fall through to the next source.
      }
    }
    return fn(this.upstream);
  }

  // ---- base ----------------------------------------------------------------

  /** GET /v2/: answers when the registry speaks the API (auth challenge answered). */
  async ping(signal?: AbortSignal): Promise<void> {
    const res = await this.call(this.upstream, { method: 'GET', url: this.url(this.upstream, '/v2/'), scope: '', expect: [200], signal });
    drain(res.body);
  }

  // ---- blobs ----------------------------------------------------------------

  private blobUrl(ep: Endpoint, repo: string, digest: Digest): URL {
    return this.url(ep, `/v2/${checkRepositoryName(repo)}/blobs/${digest.text}`);
  }

  /** HEAD of a blob: its size, or undefined when the repository does not have it. */
  async statBlob(repo: string, digest: Digest | string, signal?: AbortSignal): Promise<{ size: number } | undefined> {
    const d = typeof digest === 'string' ? parseDigest(digest) : digest;
    const res = await this.call(this.upstream, {
      method: 'HEAD',
      url: this.blobUrl(this.upstream, repo, d),
      scope: `repository:${repo}:pull`,
      expect: [200, 404],
      signal,
    });
    drain(res.body);
    if (res.status === 404) return undefined;
    return { size: Number(res.headers['content-length'] ?? NaN) };
  }

  async blobExists(repo: string, digest: Digest | string, signal?: AbortSignal): Promise<boolean> {
    return (await this.statBlob(repo, digest, signal)) !== undefined;
  }

  /**
   * Streams a blob, verifying digest (and `size` when given) as it flows; a
   * broken connection resumes with a Range request. Mirrors are tried first.
   */
  getBlob(repo: string, digest: Digest | string, options: TransferOptions & { size?: number } = {}): Readable {
    const d = typeof digest === 'string' ? parseDigest(digest) : digest;
    checkRepositoryName(repo);
    return Readable.from(this.blobChunks(repo, d, options), { objectMode: false, highWaterMark: 1 << 20 });
  }

  private async *blobChunks(
    repo: string,
    digest: Digest,
    options: TransferOptions & { size?: number },
  ): AsyncGenerator<Buffer> {
    const scope = `repository:${repo}:pull`;
    let ep: Endpoint = this.upstream;
    let res = await this.fromPullEndpoints(async (e) => {
      const r = await this.call(e, { method: 'GET', url: this.blobUrl(e, repo, digest), scope, expect: [200], signal: options.signal });
      ep = e;
      return r;
    });
    const declared = Number(res.headers['content-length']);
    const total = options.size ?? (Number.isFinite(declared) ? declared : 0);
    const meter = new ProgressMeter(digest.text, 'pull', total, options.onProgress);
    const digester = new Digester(digest.algorithm);
    let received = 0;
    let skip = 0;
    let failures = 0;
    for (;;) {
      try {
        for await (const raw of res.body as AsyncIterable<Buffer>) {
          let chunk = raw;
          if (skip > 0) {
            const n = Math.min(skip, chunk.length);
            skip -= n;
            chunk = chunk.subarray(n);
            if (chunk.length === 0) continue;
          }
          digester.update(chunk);
          received += chunk.length;
          if (options.size !== undefined && received > options.size) {
            throw new DigestMismatchError(digest.text, '(more bytes than expected)', options.size, received);
          }
          meter.add(chunk.length);
          yield chunk;
        }
        break;
      } catch (err) {
        if (err instanceof RegistryClientError || options.signal?.aborted || failures >= this.retries) throw err;
        failures++;
        await sleep(this.backoff(failures - 1));
        res = await this.call(ep, {
          method: 'GET',
          url: this.blobUrl(ep, repo, digest),
          scope,
          headers: { range: `bytes=${received}-` },
          expect: [200, 206],
          signal: options.signal,
        });
        if (res.status === 200) skip = received;
        else {
          const cr = String(res.headers['content-range'] ?? '');
          if (!cr.startsWith(`bytes ${received}-`)) {
            res.body.destroy();
            throw new ProtocolError(`resume of ${digest.text} answered Content-Range "${cr.slice(0, 80)}"`);
          }
        }
      }
    }
    const actual = digester.digest();
    if ((options.size !== undefined && options.size !== received) || !digestEquals(actual, digest)) {
      throw new DigestMismatchError(digest.text, actual.text, options.size, received);
    }
    meter.finish();
  }

  /**
   * Pushes a blob unless the repository has it: mounted from `mountFrom` when
   * given, else one PUT (size ≤ monolithicMaxBytes) or PATCH chunks that
   * resume from the session's progress after a failure.
   */
  async pushBlob(
    repo: string,
    digest: Digest | string,
    source: BlobSource,
    options: TransferOptions & { mountFrom?: string } = {},
  ): Promise<PushBlobResult> {
    const d = typeof digest === 'string' ? parseDigest(digest) : digest;
    checkRepositoryName(repo);
    const ep = this.upstream;
    const size = source.size;
    if (await this.blobExists(repo, d, options.signal)) {
      options.onProgress?.({ id: d.text, phase: 'exists', bytes: size, total: size, rate: 0, done: true });
      return { digest: d, size, action: 'exists' };
    }
    const scope = `repository:${repo}:pull,push`;
    const uploads = `/v2/${repo}/blobs/uploads/`;
    let location: URL | undefined;
    if (options.mountFrom !== undefined && options.mountFrom !== repo) {
      checkRepositoryName(options.mountFrom);
      const res = await this.call(ep, {
        method: 'POST',
        url: this.url(ep, uploads, { mount: d.text, from: options.mountFrom }),
        scope: `${scope} repository:${options.mountFrom}:pull`,
        expect: [201, 202],
        signal: options.signal,
      });
      drain(res.body);
      if (res.status === 201) {
        options.onProgress?.({ id: d.text, phase: 'mount', bytes: size, total: size, rate: 0, done: true });
        return { digest: d, size, action: 'mounted' };
      }
      location = this.location(ep, res);
    }
    const startSession = async (): Promise<URL> => {
      const res = await this.call(ep, { method: 'POST', url: this.url(ep, uploads), scope, expect: [202], signal: options.signal });
      drain(res.body);
      return this.location(ep, res);
    };
    location ??= await startSession();
    if (size <= this.monolithicMaxBytes) {
      for (let attempt = 0; ; attempt++) {
        try {
          await this.putMonolithic(ep, location, scope, d, source, options);
          break;
        } catch (err) {
          const transient = err instanceof TransportError || (err instanceof RegistryError && (err.status >= 500 || err.status === 429));
          if (!transient || attempt >= this.retries || options.signal?.aborted) throw err;
          await sleep(this.backoff(attempt));
          await this.cancelUpload(location, scope);
          location = await startSession();
        }
      }
    } else {
      try {
        await this.pushChunked(ep, location, scope, d, source, options);
      } catch (err) {
        await this.cancelUpload(location, scope);
        throw err;
      }
    }
    return { digest: d, size, action: 'uploaded' };
  }

  private withDigest(location: URL, digest: Digest): URL {
    const u = new URL(location.href);
    u.searchParams.set('digest', digest.text);
    return u;
  }

  private async putMonolithic(
    ep: Endpoint,
    location: URL,
    scope: string,
    digest: Digest,
    source: BlobSource,
    options: TransferOptions,
  ): Promise<void> {
    const meter = new ProgressMeter(digest.text, 'push', source.size, options.onProgress);
    const open = async (): Promise<Readable> => {
      meter.set(0);
      const s = await source.open();
      if (!options.onProgress) return s;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          meter.add(chunk.length);
          cb(null, chunk);
        },
      });
      s.on('error', (e) => counter.destroy(e));
      return s.pipe(counter);
    };
    const res = await this.call(ep, {
      method: 'PUT',
      url: this.withDigest(location, digest),
      scope,
      headers: { 'content-type': 'application/octet-stream' },
      body: open,
      bodyLength: source.size,
      expect: [201],
      retry: false,
      signal: options.signal,
    });
    drain(res.body);
    this.checkDigestHeader(res, digest);
    meter.finish();
  }

  private checkDigestHeader(res: TransportResponse, want: Digest): void {
    const header = res.headers['docker-content-digest'];
    if (typeof header !== 'string') return;
    const got = tryParseDigest(header);
    if (got && got.algorithm === want.algorithm && !digestEquals(got, want)) {
      throw new DigestMismatchError(want.text, got.text);
    }
  }

  /** Best effort: tells the registry to drop an abandoned upload session (it would purge it later anyway). */
  private async cancelUpload(location: URL, scope: string): Promise<void> {
    try {
      const res = await this.call(this.upstream, { method: 'DELETE', url: location, scope, expect: [204, 202, 404], retry: false });
      drain(res.body);
    } catch {
      // The session may already be gone, or the registry unreachable: nothing more to do.
    }
  }

  /** Asks an upload session how many bytes it holds (GET upload → 204 + Range). */
  async uploadProgress(location: URL, scope: string, signal?: AbortSignal): Promise<{ offset: number; location: URL }> {
    const ep = this.upstream;
    const res = await this.call(ep, { method: 'GET', url: location, scope, expect: [204, 200], signal });
    drain(res.body);
    const offset = parseUploadRange(res.headers.range as string | undefined);
    return { offset, location: res.headers.location ? this.location(ep, res) : location };
  }

  private async pushChunked(
    ep: Endpoint,
    startLocation: URL,
    scope: string,
    digest: Digest,
    source: BlobSource,
    options: TransferOptions,
  ): Promise<void> {
    const meter = new ProgressMeter(digest.text, 'push', source.size, options.onProgress);
    let location = startLocation;
    let offset = 0;
    const stream = await source.open();
    try {
      for await (const chunk of readChunks(stream, this.chunkSize)) {
        location = await this.patchChunk(ep, location, scope, chunk, offset, options.signal);
        offset += chunk.length;
        meter.add(chunk.length);
      }
    } finally {
      stream.destroy();
    }
    if (offset !== source.size) {
      throw new RegistryClientError(`blob source for ${digest.text} gave ${offset} bytes, declared ${source.size}`);
    }
    const res = await this.call(ep, {
      method: 'PUT',
      url: this.withDigest(location, digest),
      scope,
      expect: [201],
      signal: options.signal,
    });
    drain(res.body);
    this.checkDigestHeader(res, digest);
    meter.finish();
  }

  /** Sends one chunk; after a failure asks the session where it stands and sends only the rest. */
  private async patchChunk(
    ep: Endpoint,
    startLocation: URL,
    scope: string,
    chunk: Buffer,
    start: number,
    signal?: AbortSignal,
  ): Promise<URL> {
    const end = start + chunk.length; // exclusive
    let location = startLocation;
    let from = start;
    for (let attempt = 0; ; attempt++) {
      try {
        const res = await this.call(ep, {
          method: 'PATCH',
          url: location,
          scope,
          headers: { 'content-type': 'application/octet-stream', 'content-range': `${from}-${end - 1}` },
          body: chunk.subarray(from - start),
          expect: [202],
          retry: false,
          signal,
        });
        drain(res.body);
        return this.location(ep, res);
      } catch (err) {
        const transient =
          err instanceof TransportError ||
          (err instanceof RegistryError && (err.status >= 500 || err.status === 429 || err.status === 416));
        if (!transient || attempt >= this.retries || signal?.aborted) throw err;
        await sleep(this.backoff(attempt));
        const progress = await this.uploadProgress(location, scope, signal);
        location = progress.location;
        if (progress.offset >= end) return location;
        if (progress.offset < start) {
          throw new ProtocolError(
            `upload session holds ${progress.offset} bytes but the chunk starts at ${start}: cannot resume`,
          );
        }
        from = progress.offset;
      }
    }
  }

  async deleteBlob(repo: string, digest: Digest | string, signal?: AbortSignal): Promise<void> {
    const d = typeof digest === 'string' ? parseDigest(digest) : digest;
    const res = await this.call(this.upstream, {
      method: 'DELETE',
      url: this.blobUrl(this.upstream, repo, d),
      scope: `repository:${repo}:delete`,
      expect: [202],
      signal,
    });
    drain(res.body);
  }

  // ---- manifests ------------------------------------------------------------

  private manifestUrl(ep: Endpoint, repo: string, ref: string): URL {
    return this.url(ep, `/v2/${checkRepositoryName(repo)}/manifests/${ref}`);
  }

  /** Fetches a manifest (any OCI/Docker type) and verifies its digest. Mirrors are tried first. */
  async getManifest(repo: string, reference: string | Digest, signal?: AbortSignal): Promise<FetchedManifest> {
    const ref = parseManifestRef(reference);
    return this.fromPullEndpoints(async (ep) => {
      const url = this.manifestUrl(ep, repo, refText(ref));
      const res = await this.call(ep, {
        method: 'GET',
        url,
        scope: `repository:${repo}:pull`,
        headers: { accept: MANIFEST_ACCEPT },
        expect: [200],
        signal,
      });
      const bytes = await readBody(res.body, this.maxManifestBytes, `manifest ${repo}:${refText(ref)}`);
      const mediaType = String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '';
      const header = typeof res.headers['docker-content-digest'] === 'string' ? tryParseDigest(res.headers['docker-content-digest']) : undefined;
      const want = ref.kind === 'digest' ? ref.digest : header;
      const digest = digestOf(bytes, want?.algorithm ?? 'sha256');
      if (want && !digestEquals(want, digest)) throw new DigestMismatchError(want.text, digest.text);
      return { bytes, mediaType: mediaType || mediaTypeOf(bytes), digest };
    });
  }

  /** HEAD of a manifest: its digest and type, or undefined when absent. */
  async headManifest(repo: string, reference: string | Digest, signal?: AbortSignal): Promise<ManifestStat | undefined> {
    const ref = parseManifestRef(reference);
    const res = await this.call(this.upstream, {
      method: 'HEAD',
      url: this.manifestUrl(this.upstream, repo, refText(ref)),
      scope: `repository:${repo}:pull`,
      headers: { accept: MANIFEST_ACCEPT },
      expect: [200, 404],
      signal,
    });
    drain(res.body);
    if (res.status === 404) return undefined;
    const header = res.headers['docker-content-digest'];
    return {
      digest: typeof header === 'string' ? tryParseDigest(header) : ref.kind === 'digest' ? ref.digest : undefined,
      mediaType: String(res.headers['content-type'] ?? '').split(';')[0]?.trim() ?? '',
      size: Number(res.headers['content-length'] ?? NaN),
    };
  }

  /** PUTs a manifest under a tag or its digest; answers the digest. */
  async putManifest(
    repo: string,
    reference: string | Digest,
    bytes: Buffer,
    mediaType: string,
    signal?: AbortSignal,
  ): Promise<Digest> {
    const ref = parseManifestRef(reference);
    const digest = digestOf(bytes, ref.kind === 'digest' ? ref.digest.algorithm : 'sha256');
    if (ref.kind === 'digest' && !digestEquals(digest, ref.digest)) {
      throw new DigestMismatchError(ref.digest.text, digest.text);
    }
    const res = await this.call(this.upstream, {
      method: 'PUT',
      url: this.manifestUrl(this.upstream, repo, refText(ref)),
      scope: `repository:${repo}:pull,push`,
      headers: { 'content-type': mediaType },
      body: bytes,
      expect: [201],
      signal,
    });
    drain(res.body);
    this.checkDigestHeader(res, digest);
    return digest;
  }

  async deleteManifest(repo: string, digest: Digest | string, signal?: AbortSignal): Promise<void> {
    const d = typeof digest === 'string' ? parseDigest(digest) : digest;
    const res = await this.call(this.upstream, {
      method: 'DELETE',
      url: this.manifestUrl(this.upstream, repo, d.text),
      scope: `repository:${repo}:delete`,
      expect: [202],
      signal,
    });
    drain(res.body);
  }

  // ---- listings -------------------------------------------------------------

  /** Follows `Link: <…>; rel="next"` pages on the same origin, collecting `pick(page)`. */
  private async paged<T>(first: URL, scope: string, pick: (page: unknown) => T[], signal?: AbortSignal): Promise<T[]> {
    const ep = this.upstream;
    const out: T[] = [];
    let url: URL | undefined = first;
    for (let page = 0; url && page < this.maxPages; page++) {
      const res = await this.call(ep, { method: 'GET', url, scope, headers: { accept: 'application/json' }, expect: [200], signal });
      const body = await readBody(res.body, this.maxListBytes, redactUrl(url));
      let parsed: unknown;
      try {
        parsed = JSON.parse(body.toString('utf8'));
      } catch {
        throw new ProtocolError(`${redactUrl(url)}: invalid JSON`);
      }
      out.push(...pick(parsed));
      const next = parseNextLink(res.headers.link as string | undefined);
      if (!next) break;
      const nextUrl = new URL(next, ep.base);
      if (nextUrl.origin !== ep.base.origin) throw new PolicyError(`refusing a next-page link to another origin (${nextUrl.origin})`);
      url = nextUrl;
    }
    return out;
  }

  /** Every tag of a repository (all pages). */
  async listTags(repo: string, options: { pageSize?: number; signal?: AbortSignal } = {}): Promise<string[]> {
    const ep = this.upstream;
    const q = options.pageSize ? { n: String(options.pageSize) } : undefined;
    return this.paged(this.url(ep, `/v2/${checkRepositoryName(repo)}/tags/list`, q), `repository:${repo}:pull`, (p) => stringList(p, 'tags'), options.signal);
  }

  /** Every repository of the registry (all pages). */
  async catalog(options: { pageSize?: number; signal?: AbortSignal } = {}): Promise<string[]> {
    const ep = this.upstream;
    const q = options.pageSize ? { n: String(options.pageSize) } : undefined;
    return this.paged(this.url(ep, '/v2/_catalog', q), 'registry:catalog:*', (p) => stringList(p, 'repositories'), options.signal);
  }

  /**
   * Manifests referring to `digest` (OCI 1.1 referrers API); registries
   * without it are asked for the fallback tag `<alg>-<hex>`.
   */
  async referrers(
    repo: string,
    digest: Digest | string,
    options: { artifactType?: string; signal?: AbortSignal } = {},
  ): Promise<Descriptor[]> {
    const d = typeof digest === 'string' ? parseDigest(digest) : digest;
    const ep = this.upstream;
    const q = options.artifactType ? { artifactType: options.artifactType } : undefined;
    const scope = `repository:${repo}:pull`;
    let list: Descriptor[];
    try {
      list = await this.paged(this.url(ep, `/v2/${checkRepositoryName(repo)}/referrers/${d.text}`, q), scope, descriptorList, options.signal);
    } catch (err) {
      if (!(err instanceof RegistryError && err.status === 404)) throw err;
      try {
        const m = await this.getManifest(repo, `${d.algorithm}-${d.hex}`, options.signal);
        list = descriptorList(JSON.parse(m.bytes.toString('utf8')));
      } catch (e) {
        if (e instanceof RegistryError && e.status === 404) return [];
        throw e;
      }
    }
    return options.artifactType ? list.filter((x) => x.artifactType === options.artifactType) : list;
  }
}

function stringList(page: unknown, key: string): string[] {
  if (typeof page !== 'object' || page === null) throw new ProtocolError(`listing is not a JSON object`);
  const v = (page as Record<string, unknown>)[key];
  if (v === null || v === undefined) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new ProtocolError(`listing "${key}" is not a list of strings`);
  return v as string[];
}

/** Parses `manifests` of an index strictly enough to use: digest grammar, numeric size. */
export function descriptorList(page: unknown): Descriptor[] {
  if (typeof page !== 'object' || page === null) throw new ProtocolError('index is not a JSON object');
  const list = (page as { manifests?: unknown }).manifests ?? [];
  if (!Array.isArray(list)) throw new ProtocolError('index "manifests" is not a list');
  return list.map((x) => parseDescriptor(x));
}

export function parseDescriptor(x: unknown): Descriptor {
  if (typeof x !== 'object' || x === null) throw new ProtocolError('descriptor is not an object');
  const { mediaType, digest, size } = x as Record<string, unknown>;
  if (typeof mediaType !== 'string' || typeof digest !== 'string' || typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new ProtocolError('descriptor needs mediaType, digest and a non-negative integer size');
  }
  parseDigest(digest);
  return x as Descriptor;
}

function mediaTypeOf(bytes: Buffer): string {
  try {
    const m = (JSON.parse(bytes.toString('utf8')) as { mediaType?: unknown }).mediaType;
    return typeof m === 'string' ? m : '';
  } catch {
    return '';
  }
}

/** Regroups a stream into buffers of exactly `size` bytes (the last may be shorter). */
export async function* readChunks(stream: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const raw of stream as AsyncIterable<Buffer>) {
    let buf = raw;
    while (buf.length > 0) {
      const take = Math.min(size - have, buf.length);
      parts.push(buf.subarray(0, take));
      have += take;
      buf = buf.subarray(take);
      if (have === size) {
        yield Buffer.concat(parts, have);
        parts = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}
