// /metrics on the daemons: counters move with traffic, scrapes are authenticated where the role is.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startControlPlane } from '../controlplane/index.js';
import { silentLogger } from '../log/index.js';
import { pushBlob, rawRequest, startTestRegistry } from '../registry/testkit.js';
import { NodeMetrics, RoleMetrics } from './index.js';

const dirs: string[] = [];
after(() => Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true }))));

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    const body = line.slice(name.length + 1, line.lastIndexOf('}'));
    if (Object.entries(labels).every(([k, v]) => body.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

test('registry: request counts by route template and status, latency, and bytes in/out move with traffic', async () => {
  const reg = await startTestRegistry();
  try {
    const data = 'x'.repeat(10_000);
    const digest = await pushBlob(reg.url, 'library/m', data);
    const before = (await rawRequest(reg.url, 'GET', '/metrics')).body.toString();
    const got = await rawRequest(reg.url, 'GET', `/v2/library/m/blobs/${digest}`);
    assert.equal(got.status, 200);
    assert.equal((await rawRequest(reg.url, 'GET', '/v2/library/m/manifests/nope')).status, 404);
    // A request is counted when its answer has finished on the server's side, which the
    // client may see after it has read the body: scrape until the blob GET shows (bounded).
    const served = (t: string) => sample(t, 'ukc_http_requests_total', { route: '/v2 blob', method: 'GET', status: '200' }) ?? 0;
    let res = await rawRequest(reg.url, 'GET', '/metrics');
    for (let i = 0; i < 40 && served(res.body.toString()) - served(before) < 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      res = await rawRequest(reg.url, 'GET', '/metrics');
    }
    assert.equal(res.status, 200);
    assert.match(String(res.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const text = res.body.toString();
    const blobGets = (t: string) => sample(t, 'ukc_http_requests_total', { route: '/v2 blob', method: 'GET', status: '200' }) ?? 0;
    assert.equal(blobGets(text) - blobGets(before), 1, 'one more blob GET counted');
    assert.equal(sample(text, 'ukc_http_requests_total', { route: '/v2 manifest', method: 'GET', status: '404' }), 1);
    assert.ok((sample(text, 'ukc_http_request_duration_seconds_count', { route: '/v2 blob', method: 'GET', status: '200' }) ?? 0) >= 1);
    const bytes = (t: string, direction: string) => sample(t, 'ukc_registry_bytes_total', { direction }) ?? 0;
    assert.ok(bytes(text, 'in') >= data.length, 'the upload is counted in');
    assert.ok(bytes(text, 'out') - bytes(before, 'out') >= data.length, `the blob served is counted out (${bytes(before, 'out')} → ${bytes(text, 'out')})`);
    assert.doesNotMatch(text, new RegExp(digest.slice(7)), 'no raw paths (digests) as label values');
    assert.match(text, /role="registry"/);
  } finally {
    await reg.close();
  }
});

test('control plane: /metrics refuses scrapes without a token (401) and from a non-root account (403); root reads it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ukc-metrics-'));
  dirs.push(dir);
  const cp = await startControlPlane({ dataDir: dir, host: '127.0.0.1', port: 0, logger: silentLogger() });
  try {
    const root = readFileSync(cp.rootTokenFile, 'utf8').trim();
    cp.accounts.createAccount('alice');
    const alice = cp.accounts.createToken('alice', { label: 't' }).text;
    assert.equal((await rawRequest(cp.url, 'GET', '/v1/healthz')).status, 200);
    assert.equal((await rawRequest(cp.url, 'GET', '/v1/nodes/0d5c1a3e-0000-4000-8000-000000000000', { headers: { authorization: `Bearer ${root}` } })).status, 404);
    const anon = await rawRequest(cp.url, 'GET', '/metrics');
    assert.equal(anon.status, 401);
    assert.doesNotMatch(anon.body.toString(), /ukc_http/);
    assert.equal((await rawRequest(cp.url, 'GET', '/metrics', { headers: { authorization: `Bearer ${alice}` } })).status, 403);
    assert.equal((await rawRequest(cp.url, 'GET', '/metrics', { headers: { authorization: 'Bearer ukc_not_a_token' } })).status, 401);
    const ok = await rawRequest(cp.url, 'GET', '/metrics', { headers: { authorization: `Bearer ${root}` } });
    assert.equal(ok.status, 200);
    const text = ok.body.toString();
    assert.equal(sample(text, 'ukc_http_requests_total', { route: '/v1/healthz', status: '200' }), 1);
    assert.equal(sample(text, 'ukc_http_requests_total', { route: '/v1/nodes/{uuid}', status: '404' }), 1, 'ids folded into the template');
    assert.equal(sample(text, 'ukc_http_requests_total', { route: '/metrics', status: '401' }), 2);
    assert.match(text, /role="controlplane"/);
  } finally {
    await cp.close();
  }
});

test('a registry with access control and no metrics access given serves /metrics to nobody', async () => {
  const reg = await startTestRegistry({ authorizer: async () => ({ name: 'x', anonymous: false }) });
  try {
    assert.equal((await rawRequest(reg.url, 'GET', '/metrics')).status, 403);
  } finally {
    await reg.close();
  }
});

test('node series: instances by state at scrape time, boot and net times in seconds, gateway requests and wakes, cache bytes', async () => {
  const metrics = new RoleMetrics('node');
  const states = ['running', 'running', 'standby'];
  const node = new NodeMetrics(metrics, { instanceStates: () => states, imageCacheBytes: () => 12345 });
  node.observeBoot(20_000);
  node.observeNet(150_000);
  node.gatewayRequest(200);
  node.gatewayRequest(503);
  node.gatewayWake(true);
  let text = await metrics.text();
  assert.equal(sample(text, 'ukc_instances', { state: 'running' }), 2);
  assert.equal(sample(text, 'ukc_instances', { state: 'standby' }), 1);
  assert.match(text, /^ukc_node_image_cache_bytes\{role="node"\} 12345$/m);
  assert.equal(sample(text, 'ukc_instance_boot_seconds_bucket', { le: '0.02' }), 1, '20 ms boots fall in the 0.02 s bucket');
  assert.equal(sample(text, 'ukc_instance_net_seconds_bucket', { le: '0.1' }), 0);
  assert.equal(sample(text, 'ukc_instance_net_seconds_bucket', { le: '0.2' }), 1);
  assert.equal(sample(text, 'ukc_gateway_requests_total', { status: '503' }), 1);
  assert.equal(sample(text, 'ukc_gateway_wakes_total', { result: 'ok' }), 1);
  states.splice(0, 3, 'stopped');
  text = await metrics.text();
  assert.equal(sample(text, 'ukc_instances', { state: 'running' }), undefined, 'states that emptied disappear');
  assert.equal(sample(text, 'ukc_instances', { state: 'stopped' }), 1);
  assert.doesNotMatch(await new RoleMetrics('other').text(), /ukc_instances/, 'each role has its own registry');
});
