// End to end: node API + lifecycle + gateway with real app processes on 127.0.0.x, TLS checked by curl --cacert.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import https from 'node:https';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createNodeApi, parsePortShorthand, type NodeApi } from '../../src/node/index.js';
import { FakeCatalog, FakeResolver } from '../../src/node/test-doubles.test-support.js';
import { HELLO_APP, HostProcessDriver } from './gateway-host-driver.js';

/** Counts requests in memory and burns a little CPU every 10 ms, so a freeze shows (no CPU) and a thaw keeps state. */
const COUNTER_APP = `
const http = require('node:http');
let n = 0;
setInterval(() => { const end = Date.now() + 3; while (Date.now() < end); }, 10);
const server = http.createServer((req, res) => { n++; res.writeHead(200, { 'content-type': 'text/plain' }); res.end(n + ' ' + process.pid); });
server.listen(Number(process.env.PORT || 8080), process.env.LISTEN_HOST);
process.on('SIGTERM', () => process.exit(0));
`;

const run = promisify(execFile);
let dir: string;
let api: NodeApi;
let agent: https.Agent;
let driver: HostProcessDriver;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ukc-gw-e2e-'));
  const app = join(dir, 'app.cjs');
  writeFileSync(app, HELLO_APP);
  const resolver = new FakeResolver();
  resolver.add('e2e/hello:latest', { digestRef: `e2e/hello@sha256:${'c'.repeat(64)}`, config: { Cmd: [process.execPath, app], Env: ['PORT=8080'] } });
  const counter = join(dir, 'counter.cjs');
  writeFileSync(counter, COUNTER_APP);
  resolver.add('e2e/counter:latest', { digestRef: `e2e/counter@sha256:${'d'.repeat(64)}`, config: { Cmd: [process.execPath, counter], Env: ['PORT=8080'] } });
  driver = new HostProcessDriver({ listenPort: 8080 });
  api = await createNodeApi({
    dataDir: join(dir, 'node'),
    runtime: driver,
    images: resolver,
    catalog: new FakeCatalog(),
    limits: { stopGraceMs: 3000 },
    gateway: { listenAddress: () => ({ host: '127.0.0.1', port: 0 }) },
  });
  agent = new https.Agent({ keepAlive: true, maxSockets: 64, ca: api.tls!.caCertPem });
});

after(async () => {
  agent?.destroy();
  await api?.close();
  await new Promise((r) => setTimeout(r, 100)); // the killed apps' freezer groups are removed on their exit
  driver?.removeFreezerParent();
  rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, url: string, body?: unknown): Promise<{ status: number; body: { status: string; message?: string; data: Record<string, Record<string, unknown>[]> } }> {
  const r = await api.handle({ method, url, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  return { status: r.status, body: JSON.parse(r.body) as never };
}

function get(fqdn: string, path: string): Promise<{ status: number; instance: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.request({ host: '127.0.0.1', port: api.gateway!.address(443)!.port, servername: fqdn, path, headers: { host: fqdn }, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, instance: String(res.headers['x-instance'] ?? ''), body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function createGroup(extra: Record<string, unknown>): Promise<{ fqdn: string; instances: Record<string, unknown>[] }> {
  const r = await call('POST', '/v1/instances', {
    image: 'e2e/hello:latest',
    service_group: { services: parsePortShorthand('443:8080') },
    timeout_s: 15,
    ...extra,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const insts = r.body.data.instances!;
  for (const i of insts) assert.equal(i.state, 'running');
  const sg = insts[0]!.service_group as { domains: { fqdn: string }[] };
  return { fqdn: sg.domains[0]!.fqdn, instances: insts };
}

async function waitListening(fqdn: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const r = await get(fqdn, '/ready').catch(() => undefined);
    if (r?.status === 200) return;
    await new Promise((res) => setTimeout(res, 20));
  }
}

test('3 replicas: 300 requests spread over all three; TLS verified by curl with the generated CA; 80 redirects', async () => {
  const { fqdn, instances } = await createGroup({ replicas: 2 });
  assert.equal(instances.length, 3);
  await waitListening(fqdn);
  const seen = new Map<string, number>();
  for (let b = 0; b < 30; b++) {
    for (const r of await Promise.all(Array.from({ length: 10 }, (_, i) => get(fqdn, `/r${b}-${i}`)))) {
      assert.equal(r.status, 200);
      seen.set(r.instance, (seen.get(r.instance) ?? 0) + 1);
    }
  }
  assert.deepEqual([...seen.keys()].sort(), instances.map((i) => String(i.name)).sort());
  for (const n of seen.values()) assert.ok(n >= 50, `uneven spread ${JSON.stringify([...seen])}`);

  const port = api.gateway!.address(443)!.port;
  const { stdout } = await run('curl', ['-sS', '--cacert', api.tls!.caCertPath, '--resolve', `${fqdn}:${port}:127.0.0.1`, `https://${fqdn}:${port}/curl`]);
  assert.match(stdout, / \/curl$/);
  // Without the CA, verification fails.
  await assert.rejects(run('curl', ['-sS', '--resolve', `${fqdn}:${port}:127.0.0.1`, `https://${fqdn}:${port}/`]), /certificate/i);
  const p80 = api.gateway!.address(80)!.port;
  const { stdout: loc } = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code} %{redirect_url}', '--resolve', `${fqdn}:${p80}:127.0.0.1`, `http://${fqdn}:${p80}/x`]);
  assert.equal(loc, `308 https://${fqdn}:${port}/x`);
  await call('DELETE', '/v1/instances', instances.map((i) => ({ uuid: i.uuid })));
});

test('stopping one replica under load loses no accepted request (drained first)', async () => {
  const { fqdn, instances } = await createGroup({ replicas: 2 });
  await waitListening(fqdn);
  const statuses = new Map<number, number>();
  let sent = 0;
  let stop = false;
  const worker = async (): Promise<void> => {
    while (!stop && sent < 5000) {
      sent++;
      const r = await get(fqdn, '/load?delay=5').catch(() => ({ status: -1, instance: '', body: '' }));
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    }
  };
  const workers = Array.from({ length: 12 }, () => worker());
  await new Promise((r) => setTimeout(r, 400));
  const victim = String(instances[1]!.uuid);
  const stopped = await call('PUT', `/v1/instances/${victim}/stop`);
  assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
  await new Promise((r) => setTimeout(r, 400));
  stop = true;
  await Promise.all(workers);
  assert.deepEqual([...statuses.keys()], [200], `non-200 answers: ${JSON.stringify([...statuses])}`);
  assert.ok(statuses.get(200)! > 50);
  const after = await call('GET', `/v1/instances/${victim}`);
  assert.equal(after.body.data.instances![0]!.state, 'stopped');
  assert.equal(after.body.data.instances![0]!.stop_reason, 15, 'the app exited cleanly on SIGTERM after draining');
  await call('DELETE', '/v1/instances', instances.map((i) => ({ uuid: i.uuid })));
});

test('scale-to-zero: idle past the cooldown → standby; the next request wakes it and is answered', async () => {
  const { fqdn, instances } = await createGroup({ scale_to_zero: { policy: 'on', cooldown_time_ms: 300 } });
  await waitListening(fqdn);
  const uuid = String(instances[0]!.uuid);
  let state = '';
  for (let i = 0; i < 100 && state !== 'standby'; i++) {
    await new Promise((r) => setTimeout(r, 50));
    state = String((await call('GET', `/v1/instances/${uuid}`)).body.data.instances![0]!.state);
  }
  assert.equal(state, 'standby');
  const r = await get(fqdn, '/after-standby');
  assert.equal(r.status, 200);
  assert.equal(r.body, `${String(instances[0]!.name)} /after-standby`);
  const now = (await call('GET', `/v1/instances/${uuid}`)).body.data.instances![0]!;
  assert.equal(now.state, 'running');
  assert.equal(now.start_count, 2);
  await call('DELETE', '/v1/instances', [{ uuid }]);
});


/** utime + stime of a process in clock ticks (10 ms). */
function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(f[11]) + Number(f[12]);
}

async function waitState(uuid: string, want: string): Promise<void> {
  let state = '';
  for (let i = 0; i < 200 && state !== want; i++) {
    await new Promise((r) => setTimeout(r, 25));
    state = String((await call('GET', `/v1/instances/${uuid}`)).body.data.instances![0]!.state);
  }
  assert.equal(state, want);
}

test('stateful scale-to-zero: standby freezes the process (no CPU, memory kept); a request thaws it and is answered by the same process', async (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root');
  const r = await call('POST', '/v1/instances', {
    image: 'e2e/counter:latest',
    service_group: { services: parsePortShorthand('443:8080') },
    scale_to_zero: { policy: 'on', stateful: true, cooldown_time_ms: 300 },
    timeout_s: 15,
  });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const inst = r.body.data.instances![0]!;
  const uuid = String(inst.uuid);
  const fqdn = (inst.service_group as { domains: { fqdn: string }[] }).domains[0]!.fqdn;
  await waitListening(fqdn);
  const first = (await get(fqdn, '/')).body.split(' ');
  const pid = Number(first[1]);
  const n1 = Number(first[0]);
  await waitState(uuid, 'standby');
  process.kill(pid, 0); // still there: frozen, not stopped
  await new Promise((res) => setTimeout(res, 30));
  const c0 = cpuTicks(pid);
  await new Promise((res) => setTimeout(res, 500));
  assert.ok(cpuTicks(pid) - c0 <= 1, `no CPU while frozen (${cpuTicks(pid) - c0} ticks)`);
  const woke = await get(fqdn, '/after-standby');
  assert.equal(woke.status, 200);
  assert.equal(woke.body, `${n1 + 1} ${pid}`, 'same process, its in-memory count kept');
  const now = (await call('GET', `/v1/instances/${uuid}`)).body.data.instances![0]!;
  assert.equal(now.state, 'running');
  assert.equal(now.start_count, 2);
  const c1 = cpuTicks(pid);
  await new Promise((res) => setTimeout(res, 150));
  assert.ok(cpuTicks(pid) - c1 >= 1, 'it runs again after the thaw');
  // A delete of a frozen standby instance thaws it and stops the process.
  await waitState(uuid, 'standby');
  await call('DELETE', '/v1/instances', [{ uuid }]);
  let alive = true;
  for (let i = 0; i < 100 && alive; i++) {
    await new Promise((res) => setTimeout(res, 20));
    try {
      process.kill(pid, 0);
    } catch {
      alive = false;
    }
  }
  assert.equal(alive, false, 'the frozen process was stopped by the delete');
});
