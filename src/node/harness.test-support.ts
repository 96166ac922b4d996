// Test-only: builds a node API over temp storage and the doubles, with a JSON call helper.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNodeApi, type NodeApi, type NodeApiOptions } from './index.js';
import { FakeCatalog, FakeDriver, FakeResolver, ManualClock, settle } from './test-doubles.test-support.js';

export interface Envelope {
  status: 'success' | 'error' | 'partial_success';
  message?: string;
  errors?: { status: number; error: number; message: string; uuid?: string; name?: string }[];
  data: Record<string, Record<string, unknown>[]>;
  op_time_us: number;
}

export interface Harness {
  api: NodeApi;
  dir: string;
  clock: ManualClock;
  driver: FakeDriver;
  resolver: FakeResolver;
  catalog: FakeCatalog;
  call(method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<{ status: number; body: Envelope }>;
  reopen(extra?: Partial<NodeApiOptions>): Promise<void>;
  cleanup(): Promise<void>;
}

export async function makeHarness(extra: Partial<NodeApiOptions> = {}): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-node-'));
  const clock = new ManualClock();
  const driver = new FakeDriver();
  const resolver = new FakeResolver();
  resolver.add('alice/httpserver:latest', {
    digestRef: `alice/httpserver@sha256:${'a'.repeat(64)}`,
    config: { Cmd: ['/usr/bin/python3', '/src/server.py'], Env: ['PATH=/usr/bin', 'MODE=prod'], Labels: {} },
  });
  const catalog = new FakeCatalog();
  const options = (): NodeApiOptions => ({ dataDir: dir, runtime: driver, images: resolver, catalog, clock, ...extra });
  const h: Harness = {
    api: await createNodeApi(options()),
    dir,
    clock,
    driver,
    resolver,
    catalog,
    async call(method, url, body, headers) {
      const res = await h.api.handle({ method, url, ...(headers ? { headers } : {}), ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }) });
      return { status: res.status, body: JSON.parse(res.body) as Envelope };
    },
    async reopen(more = {}) {
      await h.api.close();
      h.api = await createNodeApi({ ...options(), ...more });
      await settle();
    },
    async cleanup() {
      await h.api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return h;
}
