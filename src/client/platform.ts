/**
 * PlatformClient: the typed client of the platform REST API v1 — a node's
 * controller (`/v1/instances`, `/v1/images/list`, `/v1/services`) and the
 * control plane (`/v1/images`, `/v1/metros`, `/v1/nodes`, `/v1/auth`).
 *
 * The API takes JSON bodies on every verb, GET included, which WHATWG fetch
 * refuses; requests therefore go through a `PlatformTransport` (node:http by
 * default, or an in-process handler in tests).
 *
 * Errors are typed so the CLI can name the real cause:
 *   - `PlatformAuthError`: 401/403 from the API (a bad or missing token);
 *   - `PlatformUnreachableError`: nothing answered at the address;
 *   - `PlatformApiError`: the API refused the request (carries HTTP status,
 *     the first item's Linux errno and its message);
 *   - `PlatformProtocolError`: the answer was not the documented envelope.
 * A token never appears in any error message.
 */
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';

export interface PlatformRequest {
  method: string;
  /** Absolute URL. */
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

export interface PlatformResponse {
  status: number;
  body: string;
}

export type PlatformTransport = (req: PlatformRequest) => Promise<PlatformResponse>;

export interface PlatformClientOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:8080`; paths start with `/v1`. */
  baseUrl: string;
  token?: string;
  transport?: PlatformTransport;
  userAgent?: string;
  /** Largest response body accepted (bytes). */
  maxResponseBytes?: number;
}

export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

/** Service groups answer under `data.service_groups`; nodes of the older dialect said `data.services`. */
const OLDER_GROUPS = { olderCollection: 'services' } as const;

export class PlatformClientError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlatformClientError';
  }
}

/** The API answered, and refused. */
export class PlatformApiError extends PlatformClientError {
  constructor(
    message: string,
    readonly status: number,
    /** Linux errno of the first failed item, when the API gave one. */
    readonly errno: number | undefined,
    readonly failures: readonly ItemFailure[] = [],
  ) {
    super(message);
    this.name = 'PlatformApiError';
  }
}

/** 401 or 403: the token is missing, malformed, unknown or not allowed to do this. */
export class PlatformAuthError extends PlatformApiError {
  constructor(
    message: string,
    status: number,
    readonly url: string,
  ) {
    super(message, status, undefined);
    this.name = 'PlatformAuthError';
  }
}

export class PlatformUnreachableError extends PlatformClientError {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(`cannot reach ${url}: ${reason}`);
    this.name = 'PlatformUnreachableError';
  }
}

export class PlatformProtocolError extends PlatformClientError {
  constructor(message: string) {
    super(message);
    this.name = 'PlatformProtocolError';
  }
}

export interface ItemFailure {
  uuid?: string;
  name?: string;
  message: string;
  errno?: number;
}

/** One element of `data.<collection>`, as sent. */
export type ApiItem = Record<string, unknown> & { status?: string; message?: string; error?: number };

export interface Envelope {
  status: 'success' | 'error' | 'partial_success';
  message?: string;
  errors?: { status?: number; message?: string; error?: number; uuid?: string; name?: string }[];
  data: Record<string, ApiItem[]>;
  op_time_us?: number;
}

/** `{uuid}` or `{name}`: how batch endpoints select one object. */
export type Selector = { uuid: string } | { name: string };

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A name or a UUID as typed by a user, as a selector. */
export function selectorOf(text: string): Selector {
  return UUID_RE.test(text) ? { uuid: text } : { name: text };
}

// ---- API object shapes (the fields the CLI reads; the rest pass through) ----

export interface Instance extends ApiItem {
  uuid: string;
  name: string;
  state?: string;
  image?: string;
  memory_mb?: number;
  vcpus?: number;
  args?: string[];
  env?: Record<string, string>;
  private_ip?: string;
  private_fqdn?: string;
  created_at?: string;
  started_at?: string;
  boot_time_us?: number;
  service_group?: { uuid?: string; name?: string; domains?: { fqdn?: string }[] };
}

export interface CreateInstanceRequest {
  image: string | { url: string; credentials?: { username: string; password: string }; pull_policy?: 'always' | 'never' | 'if_not_present' };
  name?: string;
  args?: string[];
  env?: Record<string, string>;
  memory_mb?: number;
  vcpus?: number;
  replicas?: number;
  autostart?: boolean;
  timeout_s?: number;
  restart_policy?: 'never' | 'always' | 'on-failure';
  service_group?: Record<string, unknown>;
  scale_to_zero?: { policy: 'on' | 'off' | 'idle'; stateful?: boolean; cooldown_time_ms?: number };
  features?: 'delete-on-stop'[];
  tags?: string[];
}

export interface LogChunk {
  uuid: string;
  name: string;
  /** Decoded console bytes. */
  output: Buffer;
  available?: { start: number; end: number };
  range?: { start: number; end: number };
}

export interface CentralImage extends ApiItem {
  name: string;
  tags?: { name: string; digest: string }[];
}

export interface LocalImage extends ApiItem {
  url: string;
  tags?: string[];
  size_in_bytes?: number;
  created_at?: string;
}

export interface Metro extends ApiItem {
  name: string;
  api: string;
}

export interface NodeInfo extends ApiItem {
  uuid: string;
  name: string;
  metro: string;
  state?: string;
}

export interface Whoami extends ApiItem {
  account: string;
  role: string;
}

export class PlatformClient {
  readonly baseUrl: string;
  private readonly token: string | undefined;
  private readonly transport: PlatformTransport;
  private readonly userAgent: string;

  constructor(options: PlatformClientOptions) {
    let base: URL;
    try {
      base = new URL(options.baseUrl);
    } catch {
      throw new PlatformClientError(`invalid API address "${options.baseUrl}"`);
    }
    if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new PlatformClientError(`invalid API address "${options.baseUrl}": want http or https`);
    this.baseUrl = base.toString().replace(/\/+$/, '');
    this.token = options.token;
    this.transport = options.transport ?? nodeHttpTransport(options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES);
    this.userAgent = options.userAgent ?? 'ukc-cli';
  }

  /** Sends one request and returns the parsed envelope; throws on transport, auth and envelope-level errors. */
  async call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Envelope> {
    const url = `${this.baseUrl}${path}`;
    const headers: Record<string, string> = { accept: 'application/json', 'user-agent': this.userAgent };
    if (this.token !== undefined && this.token !== '') headers.authorization = `Bearer ${this.token}`;
    const req: PlatformRequest = { method, url, headers };
    if (body !== undefined) {
      req.body = JSON.stringify(body);
      headers['content-type'] = 'application/json';
    }
    if (signal) req.signal = signal;
    let res: PlatformResponse;
    try {
      res = await this.transport(req);
    } catch (err) {
      if (signal?.aborted) throw err;
      throw new PlatformUnreachableError(this.baseUrl, err instanceof Error ? err.message : String(err));
    }
    const envelope = parseEnvelope(res, method, path);
    if (res.status === 401 || res.status === 403) {
      const why = envelope?.message ?? envelope?.errors?.[0]?.message ?? `HTTP ${res.status}`;
      const what = res.status === 401 ? 'the API token was rejected' : 'the API token may not do this';
      throw new PlatformAuthError(`${what} by ${this.baseUrl} (${why})`, res.status, this.baseUrl);
    }
    if (!envelope) throw new PlatformProtocolError(`${method} ${path}: HTTP ${res.status} without an API envelope`);
    if (envelope.status === 'error') {
      const failures = failuresOf(envelope);
      const first = failures[0];
      const message = first && (first.name ?? first.uuid) ? failures.map(describeFailure).join('; ') : (envelope.message ?? first?.message ?? `HTTP ${res.status}`);
      throw new PlatformApiError(message, res.status, first?.errno, failures);
    }
    return envelope;
  }

  /** Items of `collection`; a failed item throws (with every failure) unless `allowPartial`. */
  async items<T extends ApiItem>(
    method: string,
    path: string,
    collection: string,
    body?: unknown,
    options: { allowPartial?: boolean; signal?: AbortSignal; olderCollection?: string } = {},
  ): Promise<T[]> {
    const env = await this.call(method, path, body, options.signal);
    const list = env.data?.[collection] ?? (options.olderCollection !== undefined ? env.data?.[options.olderCollection] : undefined);
    if (list === undefined) return [];
    if (!Array.isArray(list)) throw new PlatformProtocolError(`${method} ${path}: data.${collection} is not a list`);
    if (env.status === 'partial_success' && !options.allowPartial) {
      const failures = failuresOf(env);
      throw new PlatformApiError(failures.map(describeFailure).join('; '), 200, failures[0]?.errno, failures);
    }
    return list as T[];
  }

  // ---- node: instances ----

  createInstance(req: CreateInstanceRequest, signal?: AbortSignal): Promise<Instance[]> {
    return this.items<Instance>('POST', '/v1/instances', 'instances', req, signal ? { signal } : {});
  }

  listInstances(): Promise<Instance[]> {
    return this.items<Instance>('GET', '/v1/instances', 'instances');
  }

  getInstances(selectors: Selector[]): Promise<Instance[]> {
    return this.items<Instance>('GET', '/v1/instances', 'instances', selectors);
  }

  startInstances(selectors: Selector[]): Promise<Instance[]> {
    return this.items<Instance>('PUT', '/v1/instances/start', 'instances', selectors);
  }

  stopInstances(selectors: Selector[], opts: { force?: boolean } = {}): Promise<Instance[]> {
    return this.items<Instance>('PUT', '/v1/instances/stop', 'instances', selectors.map((s) => ({ ...s, ...opts })));
  }

  deleteInstances(selectors: Selector[]): Promise<Instance[]> {
    return this.items<Instance>('DELETE', '/v1/instances', 'instances', selectors);
  }

  waitInstances(selectors: Selector[], state: string, timeoutMs: number, signal?: AbortSignal): Promise<Instance[]> {
    const body = selectors.map((s) => ({ ...s, state, timeout_ms: timeoutMs }));
    return this.items<Instance>('GET', '/v1/instances/wait', 'instances', body, signal ? { signal } : {});
  }

  async instanceLog(selector: Selector, opts: { offset?: number; limit?: number } = {}): Promise<LogChunk> {
    const [item] = await this.items<ApiItem>('GET', '/v1/instances/log', 'instances', [{ ...selector, ...opts }]);
    if (!item || typeof item.output !== 'string') throw new PlatformProtocolError('log answer without output');
    const chunk: LogChunk = { uuid: String(item.uuid), name: String(item.name), output: Buffer.from(item.output, 'base64') };
    if (isRange(item.available)) chunk.available = item.available;
    if (isRange(item.range)) chunk.range = item.range;
    return chunk;
  }

  // ---- node: local images and services ----

  listLocalImages(filters: ({ tag: string } | { digest: string })[] = []): Promise<LocalImage[]> {
    return this.items<LocalImage>('GET', '/v1/images/list', 'images', filters.length > 0 ? filters : undefined);
  }

  listServices(): Promise<ApiItem[]> {
    return this.items('GET', '/v1/services', 'service_groups', undefined, OLDER_GROUPS);
  }

  getServices(selectors: Selector[]): Promise<ApiItem[]> {
    return this.items('GET', '/v1/services', 'service_groups', selectors, OLDER_GROUPS);
  }

  createService(req: Record<string, unknown>): Promise<ApiItem[]> {
    return this.items('POST', '/v1/services', 'service_groups', req, OLDER_GROUPS);
  }

  deleteServices(selectors: Selector[]): Promise<ApiItem[]> {
    return this.items('DELETE', '/v1/services', 'service_groups', selectors, OLDER_GROUPS);
  }

  healthz(): Promise<Envelope> {
    return this.call('GET', '/v1/healthz');
  }

  // ---- control plane ----

  listCentralImages(opts: { details?: boolean; namespace?: string } = {}): Promise<CentralImage[]> {
    const q = new URLSearchParams();
    if (opts.details !== undefined) q.set('details', String(opts.details));
    if (opts.namespace !== undefined) q.set('namespace', opts.namespace);
    const qs = q.toString();
    return this.items<CentralImage>('GET', `/v1/images${qs ? `?${qs}` : ''}`, 'images');
  }

  /** Deletes images (`owner/image` or `owner/image:tag`) from the central registry. */
  deleteCentralImages(names: string[]): Promise<CentralImage[]> {
    return this.items<CentralImage>('DELETE', '/v1/images', 'images', names.map((name) => ({ name })));
  }

  listMetros(): Promise<Metro[]> {
    return this.items<Metro>('GET', '/v1/metros', 'metros');
  }

  listNodes(): Promise<NodeInfo[]> {
    return this.items<NodeInfo>('GET', '/v1/nodes', 'nodes');
  }

  registerNode(req: { name: string; metro: string; api: string; registry?: string }): Promise<NodeInfo[]> {
    return this.items<NodeInfo>('POST', '/v1/nodes', 'nodes', req);
  }

  reportNodeHealth(uuid: string, health: { healthy: boolean; instances?: number }): Promise<NodeInfo[]> {
    return this.items<NodeInfo>('PUT', `/v1/nodes/${encodeURIComponent(uuid)}/health`, 'nodes', health);
  }

  async whoami(): Promise<Whoami> {
    const [me] = await this.items<Whoami>('GET', '/v1/auth', 'auth');
    if (!me || typeof me.account !== 'string') throw new PlatformProtocolError('GET /v1/auth: no account in the answer');
    return me;
  }
}

function isRange(v: unknown): v is { start: number; end: number } {
  return typeof v === 'object' && v !== null && typeof (v as { start?: unknown }).start === 'number' && typeof (v as { end?: unknown }).end === 'number';
}

function parseEnvelope(res: PlatformResponse, method: string, path: string): Envelope | undefined {
  if (res.body === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(res.body);
  } catch {
    if (res.status >= 200 && res.status < 300) throw new PlatformProtocolError(`${method} ${path}: answer is not JSON`);
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const env = parsed as Partial<Envelope>;
  if (env.status !== 'success' && env.status !== 'error' && env.status !== 'partial_success') return undefined;
  if (env.data === undefined || typeof env.data !== 'object' || env.data === null) env.data = {};
  return env as Envelope;
}

function failuresOf(env: Envelope): ItemFailure[] {
  const out: ItemFailure[] = [];
  for (const list of Object.values(env.data ?? {})) {
    if (!Array.isArray(list)) continue;
    for (const item of list) {
      if (item.status !== 'error') continue;
      const f: ItemFailure = { message: typeof item.message === 'string' ? item.message : 'failed' };
      if (typeof item.uuid === 'string') f.uuid = item.uuid;
      if (typeof item.name === 'string') f.name = item.name;
      if (typeof item.error === 'number') f.errno = item.error;
      out.push(f);
    }
  }
  if (out.length === 0) {
    for (const e of env.errors ?? []) {
      const f: ItemFailure = { message: e.message ?? 'failed' };
      if (e.uuid !== undefined) f.uuid = e.uuid;
      if (e.name !== undefined) f.name = e.name;
      if (e.error !== undefined) f.errno = e.error;
      out.push(f);
    }
  }
  return out;
}

export function describeFailure(f: ItemFailure): string {
  const who = f.name ?? f.uuid;
  return who ? `${who}: ${f.message}` : f.message;
}

/** The default transport: node:http(s), body read up to `maxBytes`. */
export function nodeHttpTransport(maxBytes = DEFAULT_MAX_RESPONSE_BYTES): PlatformTransport {
  return (req) =>
    new Promise<PlatformResponse>((resolve, reject) => {
      const url = new URL(req.url);
      const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
      const headers: Record<string, string | number> = { ...req.headers };
      if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
      const r = send(url, { method: req.method, headers, ...(req.signal ? { signal: req.signal } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > maxBytes) {
            res.destroy(new Error(`answer larger than ${maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      });
      r.on('error', reject);
      r.end(req.body);
    });
}

/** A transport that calls an in-process handler with the same shape (tests, embedding). */
export function inProcessTransport(
  handle: (req: { method: string; url: string; headers: Record<string, string>; body?: string; signal?: AbortSignal }) => Promise<{ status: number; body: string }>,
): PlatformTransport {
  return async (req) => {
    const u = new URL(req.url);
    const forwarded: { method: string; url: string; headers: Record<string, string>; body?: string; signal?: AbortSignal } = {
      method: req.method,
      url: `${u.pathname}${u.search}`,
      headers: req.headers,
    };
    if (req.body !== undefined) forwarded.body = req.body;
    if (req.signal) forwarded.signal = req.signal;
    const res = await handle(forwarded);
    return { status: res.status, body: res.body };
  };
}
