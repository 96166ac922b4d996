// Gateway behaviour against real loopback backends (127.0.0.x) and a test-only GatewayBackend.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Gateway, type GatewayObserver } from './gateway.js';
import { CertificateDirectory } from './tls.js';
import type { BackendEvent, GatewayBackend, GatewayGroup, GatewayMember } from './backend.js';
import { ensureNodeTls, type NodeTlsMaterial } from '../certificates/ca.js';
import { normalizeService } from '../services/index.js';

let material: NodeTlsMaterial;
let certDir: string;
before(async () => {
  certDir = mkdtempSync(join(tmpdir(), 'ukc-gw-'));
  material = await ensureNodeTls({ dir: certDir, zone: 'local.localhost' });
});
after(() => rmSync(certDir, { recursive: true, force: true }));

/** A real app instance: an HTTP server on 127.0.0.x answering with its own name. */
class App {
  server: http.Server | undefined;
  hits = 0;
  hold: Promise<void> | undefined;
  constructor(
    readonly name: string,
    readonly ip: string,
  ) {}
  async listen(port: number): Promise<void> {
    const server = http.createServer((req, res) => {
      this.hits++;
      const reply = (): void => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-app': this.name });
        res.end(`${this.name} ${req.method} ${req.url}`);
      };
      if (this.hold) void this.hold.then(reply);
      else reply();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.ip, () => resolve());
    });
    this.server = server;
  }
  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
}

/** Test-only backend: members are Apps; wake listens, standby closes. */
class TestBackend implements GatewayBackend {
  readonly listeners = new Set<(e: BackendEvent) => void>();
  readonly members_ = new Map<string, GatewayMember & { app: App }>();
  groups_: GatewayGroup[] = [];
  wakes = 0;
  standbys = 0;
  wakeDelayMs = 0;
  constructor(readonly port: number) {}
  groups(): GatewayGroup[] {
    return this.groups_;
  }
  members(): GatewayMember[] {
    return [...this.members_.values()];
  }
  subscribe(fn: (e: BackendEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  set(uuid: string, patch: Partial<GatewayMember>): void {
    const m = this.members_.get(uuid)!;
    Object.assign(m, patch);
    for (const l of this.listeners) l({ type: 'member', member: { ...m } });
  }
  add(m: GatewayMember & { app: App }): void {
    this.members_.set(m.uuid, m);
    for (const l of this.listeners) l({ type: 'member', member: { ...m } });
  }
  async wake(uuid: string): Promise<void> {
    this.wakes++;
    const m = this.members_.get(uuid)!;
    this.set(uuid, { state: 'starting' });
    await new Promise((r) => setTimeout(r, this.wakeDelayMs));
    await m.app.listen(this.port);
    this.set(uuid, { state: 'running' });
  }
  async standby(uuid: string): Promise<void> {
    this.standbys++;
    const m = this.members_.get(uuid)!;
    this.set(uuid, { state: 'stopping' });
    await m.app.close();
    this.set(uuid, { state: 'standby' });
  }
}

async function freePortOn(ips: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, ips[0], () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const ok = await Promise.all(
      ips.map(
        (ip) =>
          new Promise<boolean>((resolve) => {
            const s = net.createServer();
            s.once('error', () => resolve(false));
            s.listen(port, ip, () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (ok.every(Boolean)) return port;
  }
  throw new Error('no common free port');
}

interface Setup {
  gw: Gateway;
  backend: TestBackend;
  apps: App[];
  cleanup(): Promise<void>;
}

async function setup(opts: {
  replicas: number;
  services?: GatewayGroup['services'];
  running?: boolean;
  softLimit?: number | null;
  hardLimit?: number | null;
  scaleToZero?: GatewayMember['scaleToZero'];
  limits?: ConstructorParameters<typeof Gateway>[0]['limits'];
  observer?: GatewayObserver;
}): Promise<Setup> {
  const ips = Array.from({ length: opts.replicas }, (_, i) => `127.0.0.${i + 2}`);
  const port = await freePortOn(ips);
  const backend = new TestBackend(port);
  backend.groups_ = [
    {
      uuid: 'g1',
      hostnames: ['app.local.localhost'],
      services: opts.services ?? [
        normalizeService({ port: 443, destination_port: port, handlers: ['http', 'tls'] }),
        normalizeService({ port: 80, destination_port: 443, handlers: ['http', 'redirect'] }),
      ],
      softLimit: opts.softLimit ?? null,
      hardLimit: opts.hardLimit ?? null,
    },
  ];
  const apps = ips.map((ip, i) => new App(`app${i}`, ip));
  for (const [i, app] of apps.entries()) {
    const running = opts.running ?? true;
    if (running) await app.listen(port);
    backend.add({ uuid: `m${i}`, group: 'g1', state: running ? 'running' : 'standby', address: app.ip, scaleToZero: opts.scaleToZero ?? null, app });
  }
  const gw = new Gateway({
    backend,
    tls: new CertificateDirectory({ cert: material.certPem, key: material.keyPem }),
    listenAddress: () => ({ host: '127.0.0.1', port: 0 }),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.observer ? { observer: opts.observer } : {}),
  });
  await gw.start();
  return {
    gw,
    backend,
    apps,
    async cleanup() {
      await gw.close();
      await Promise.all(apps.map((a) => a.close()));
    },
  };
}

const agent = new https.Agent({ keepAlive: true, maxSockets: 32 });
after(() => agent.destroy());

function get(gw: Gateway, path = '/', host = 'app.local.localhost'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = https.request(
      { host: '127.0.0.1', port: gw.address(443)!.port, path, servername: host, headers: { host }, ca: material.caCertPem, agent },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

test('a group of 3 replicas spreads 300 requests over all three, verified with the generated CA', async () => {
  const s = await setup({ replicas: 3 });
  try {
    const seen = new Map<string, number>();
    for (let batch = 0; batch < 30; batch++) {
      const rs = await Promise.all(Array.from({ length: 10 }, () => get(s.gw)));
      for (const r of rs) {
        assert.equal(r.status, 200);
        const who = r.headers['x-app'] as string;
        seen.set(who, (seen.get(who) ?? 0) + 1);
      }
    }
    assert.equal([...seen.values()].reduce((a, b) => a + b, 0), 300);
    assert.equal(seen.size, 3);
    for (const [who, n] of seen) assert.ok(n >= 60, `${who} got only ${n} of 300`);
  } finally {
    await s.cleanup();
  }
});

test('port 80 redirects to https with a 308; unknown hosts get 404', async () => {
  const s = await setup({ replicas: 1 });
  try {
    const port80 = s.gw.address(80)!.port;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: port80, path: '/x?y=1', headers: { host: `app.local.localhost:${port80}` } }, resolve);
      req.on('error', reject);
      req.end();
    });
    res.resume();
    assert.equal(res.statusCode, 308);
    assert.equal(res.headers.location, `https://app.local.localhost:${s.gw.address(443)!.port}/x?y=1`);
    const unknown = await get(s.gw, '/', 'nope.local.localhost');
    assert.equal(unknown.status, 404);
    assert.match(unknown.body, /no service group serves nope\.local\.localhost/);
  } finally {
    await s.cleanup();
  }
});

test('hard_limit: above it the gateway answers 503 at once instead of queueing', async () => {
  const s = await setup({ replicas: 1, hardLimit: 2 });
  let open!: () => void;
  s.apps[0]!.hold = new Promise<void>((r) => (open = r));
  try {
    const held = [get(s.gw, '/a'), get(s.gw, '/b')];
    for (let i = 0; i < 100 && s.gw.load('m0')!.inflight < 2; i++) await new Promise((r) => setTimeout(r, 5));
    const t0 = performance.now();
    const refused = await get(s.gw, '/c');
    assert.equal(refused.status, 503);
    assert.equal(refused.headers['x-ukc-gateway-error'], 'hard-limit');
    assert.equal(refused.headers['retry-after'], '1');
    assert.ok(performance.now() - t0 < 1000);
    open();
    for (const r of await Promise.all(held)) assert.equal(r.status, 200);
    assert.equal(s.apps[0]!.hits, 2);
  } finally {
    open();
    await s.cleanup();
  }
});

test('nothing goes to instances that are not running; none running and none in standby → 503', async () => {
  const s = await setup({ replicas: 2 });
  try {
    s.backend.set('m0', { state: 'stopping' });
    for (let i = 0; i < 20; i++) assert.equal((await get(s.gw)).headers['x-app'], 'app1');
    s.backend.set('m1', { state: 'stopped' });
    const r = await get(s.gw);
    assert.equal(r.status, 503);
    assert.equal(r.headers['x-ukc-gateway-error'], 'no-instance');
  } finally {
    await s.cleanup();
  }
});

test('a refused connection is retried on another replica (no request lost)', async () => {
  const s = await setup({ replicas: 3 });
  try {
    await s.apps[1]!.close(); // still "running" on record: the app died under the gateway's feet
    for (let i = 0; i < 30; i++) {
      const r = await get(s.gw);
      assert.equal(r.status, 200);
      assert.notEqual(r.headers['x-app'], 'app1');
    }
  } finally {
    await s.cleanup();
  }
});

test('drain waits for requests in flight and takes the member out of rotation at once', async () => {
  const s = await setup({ replicas: 2 });
  let open!: () => void;
  s.apps[0]!.hold = new Promise<void>((r) => (open = r));
  try {
    const inflight: Promise<{ status: number }>[] = [];
    for (let i = 0; i < 6; i++) inflight.push(get(s.gw, `/${i}`));
    for (let i = 0; i < 100 && s.gw.load('m0')!.inflight === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.ok(s.gw.load('m0')!.inflight > 0);
    let drained = false;
    const d = s.gw.drain('m0', 5000).then(() => (drained = true));
    for (let i = 0; i < 10; i++) assert.equal((await get(s.gw)).status, 200);
    assert.equal(drained, false);
    assert.ok(s.apps[0]!.hits <= 6);
    const hitsBefore = s.apps[0]!.hits;
    open();
    await d;
    assert.equal(s.gw.load('m0')!.inflight, 0);
    for (const r of await Promise.all(inflight)) assert.equal(r.status, 200);
    assert.equal(s.apps[0]!.hits, hitsBefore);
  } finally {
    open();
    await s.cleanup();
  }
});

test('scale-to-zero: idle past the cooldown → standby; the next request is held, woken and served', async () => {
  const seen = { statuses: [] as number[], wakes: [] as boolean[] };
  const observer: GatewayObserver = { request: (status) => seen.statuses.push(status), wake: (ok) => seen.wakes.push(ok) };
  const s = await setup({ replicas: 1, scaleToZero: { policy: 'on', stateful: false, cooldown_time_ms: 150 }, observer });
  try {
    assert.equal((await get(s.gw)).status, 200);
    for (let i = 0; i < 100 && s.backend.members_.get('m0')!.state !== 'standby'; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(s.backend.members_.get('m0')!.state, 'standby');
    assert.equal(s.backend.standbys, 1);
    s.backend.wakeDelayMs = 30;
    const rs = await Promise.all([get(s.gw, '/w1'), get(s.gw, '/w2'), get(s.gw, '/w3')]);
    for (const r of rs) assert.equal(r.status, 200);
    assert.equal(s.backend.wakes, 1, 'concurrent requests share one wake');
    assert.equal(s.backend.members_.get('m0')!.state, 'running');
    assert.deepEqual(seen.wakes, [true], 'the observer (metrics) counts the one wake');
    for (let i = 0; i < 50 && seen.statuses.length < 4; i++) await new Promise((r) => setTimeout(r, 10));
    assert.deepEqual(seen.statuses, [200, 200, 200, 200], 'and every request answered, with its status');
  } finally {
    await s.cleanup();
  }
});

test('soft_limit wakes another standby replica while traffic keeps flowing', async () => {
  const s = await setup({ replicas: 2, softLimit: 1 });
  let open!: () => void;
  s.apps[0]!.hold = new Promise<void>((r) => (open = r));
  try {
    s.backend.set('m1', { state: 'standby' });
    await s.apps[1]!.close();
    const first = get(s.gw, '/1');
    for (let i = 0; i < 100 && s.gw.load('m0')!.inflight === 0; i++) await new Promise((r) => setTimeout(r, 5));
    const second = get(s.gw, '/2'); // least-loaded is at soft_limit → wake m1
    for (let i = 0; i < 100 && s.backend.members_.get('m1')!.state !== 'running'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(s.backend.members_.get('m1')!.state, 'running');
    open();
    assert.equal((await first).status, 200);
    assert.equal((await second).status, 200);
  } finally {
    open();
    await s.cleanup();
  }
});

test('TLS-terminated TCP on another port: SNI picks the group, bytes are piped per connection', async () => {
  const ip = '127.0.0.2';
  const port = await freePortOn([ip]);
  const echo = net.createServer((c) => c.pipe(c));
  await new Promise<void>((r) => echo.listen(port, ip, () => r()));
  const backend = new TestBackend(port);
  backend.groups_ = [
    { uuid: 'g1', hostnames: ['db.local.localhost'], services: [normalizeService({ port: 5432, destination_port: port, handlers: ['tls'] })], softLimit: null, hardLimit: null },
  ];
  backend.add({ uuid: 'm0', group: 'g1', state: 'running', address: ip, scaleToZero: null, app: new App('x', ip) });
  const gw = new Gateway({
    backend,
    tls: new CertificateDirectory({ cert: material.certPem, key: material.keyPem }),
    listenAddress: () => ({ host: '127.0.0.1', port: 0 }),
  });
  await gw.start();
  try {
    assert.deepEqual(gw.ports(), [5432]);
    const reply = await new Promise<string>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port: gw.address(5432)!.port, servername: 'db.local.localhost', ca: material.caCertPem }, () => {
        c.write('ping over tls');
      });
      let got = '';
      c.setEncoding('utf8');
      c.on('data', (d: string) => {
        got += d;
        if (got.length >= 13) {
          c.end();
          resolve(got);
        }
      });
      c.on('error', reject);
    });
    assert.equal(reply, 'ping over tls');
  } finally {
    await gw.close();
    await new Promise<void>((r) => echo.close(() => r()));
  }
});

test('a public port that cannot be opened is reported by refresh', async () => {
  const blocker = net.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
  const taken = (blocker.address() as net.AddressInfo).port;
  const backend = new TestBackend(1);
  const gw = new Gateway({
    backend,
    tls: new CertificateDirectory({ cert: material.certPem, key: material.keyPem }),
    listenAddress: (p) => ({ host: '127.0.0.1', port: p === 8443 ? taken : 0 }),
  });
  await gw.start();
  try {
    backend.groups_ = [{ uuid: 'g', hostnames: ['a.b'], services: [normalizeService({ port: 8443, handlers: ['tls'] })], softLimit: null, hardLimit: null }];
    await assert.rejects(gw.refresh(), /public port 8443 .*EADDRINUSE/);
  } finally {
    await gw.close();
    await new Promise<void>((r) => blocker.close(() => r()));
  }
});
