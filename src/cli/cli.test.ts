import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { makeHarness, type Harness } from '../node/harness.test-support.js';
import { inProcessTransport, nodeHttpTransport, type PlatformTransport } from '../client/platform.js';
import { startControlPlane, type ControlPlane } from '../controlplane/index.js';
import { loadConfig, saveConfig } from './config.js';
import { main } from './index.js';
import { Snapshots } from './snapshot.test-support.js';

const snap = new Snapshots('cli');
const NODE_URL = 'http://node.test';

interface World {
  h: Harness;
  cp: ControlPlane;
  dir: string;
  configPath: string;
  token: string;
  run(argv: string[], env?: Record<string, string>): Promise<{ code: number; out: string; err: string }>;
}

async function withWorld(fn: (w: World) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-cli-'));
  const h = await makeHarness();
  const cp = await startControlPlane({ dataDir: join(dir, 'cp'), host: '127.0.0.1', port: 0, registryName: 'index.ukc.test', logError: () => {} });
  cp.accounts.createAccount('alice');
  const token = cp.accounts.createToken('alice').text;
  h.resolver.add(`${cp.registryHost}/alice/httpserver:latest`, {
    digestRef: `${cp.registryHost}/alice/httpserver@sha256:${'c'.repeat(64)}`,
    config: { Cmd: ['/bin/httpd', '-f'], Env: ['PATH=/bin'], Labels: {} },
  });
  const configPath = join(dir, 'config.yaml');
  saveConfig(configPath, {
    currentProfile: 'dev',
    profiles: { dev: { token, account: 'alice', controlplane: cp.url, registry: cp.registryHost, metro: 'dev', metros: { dev: { api: NODE_URL } } } },
  });
  const viaNode = inProcessTransport((r) => h.api.handle(r));
  const overHttp = nodeHttpTransport();
  const transport: PlatformTransport = (req) => (req.url.startsWith(NODE_URL) ? viaNode(req) : overHttp(req));
  const w: World = {
    h,
    cp,
    dir,
    configPath,
    token,
    async run(argv, env = {}) {
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let out = '';
      let err = '';
      stdout.on('data', (c: Buffer) => (out += c.toString()));
      stderr.on('data', (c: Buffer) => (err += c.toString()));
      const code = await main(
        argv,
        { cwd: dir, env: { HOME: dir, UNIKRAFT_CONFIG: configPath, ...env }, stdout, stderr, signal: new AbortController().signal },
        { now: () => h.clock.now() + 90_000, transport, sleep: async () => {} },
      );
      return { code, out, err };
    },
  };
  try {
    await fn(w);
  } finally {
    await cp.close();
    await h.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Replaces generated ids with stable placeholders so snapshots hold the shape. */
function stable(text: string, w: World): string {
  let out = text.replaceAll(w.cp.registryHost, '<registry>');
  const uuids = [...new Set(text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g) ?? [])];
  uuids.forEach((u, i) => (out = out.replaceAll(u, `<uuid-${i}>`)));
  return out;
}

test('run --image starts one instance and prints its key/value block; --replicas 2 prints three', async () => {
  await withWorld(async (w) => {
    const one = await w.run(['run', '--image', 'alice/httpserver:latest', '-n', 'web', '-m', '256M', '-e', 'MODE=test']);
    assert.equal(one.code, 0, one.err);
    assert.match(one.out, /^ +name: web$/m);
    assert.match(one.out, /resources\.memory: 256 MiB/);
    assert.equal(w.h.resolver.requests[0]?.url, `${w.cp.registryHost}/alice/httpserver:latest`);
    assert.deepEqual(w.h.resolver.requests[0]?.credentials, { username: 'alice', password: w.token });
    const three = await w.run(['run', '--image', 'alice/httpserver:latest', '--replicas', '2']);
    assert.equal(three.code, 0, three.err);
    assert.equal((three.out.match(/^ +name: /gm) ?? []).length, 3);
    const list = await w.run(['instances', 'list', '-o', 'quiet']);
    assert.equal(list.out.trim().split('\n').length, 4);
  });
});

test("run's default output is the docs' key/value blocks: one per instance, three with --replicas 2 (snapshot; the service keys are checked end to end)", async () => {
  await withWorld(async (w) => {
    const r = await w.run(['run', '--image', 'alice/httpserver:latest', '-n', 'hello', '--replicas', '2']);
    assert.equal(r.code, 0, r.err);
    const blocks = r.out.trimEnd().split('\n\n');
    assert.equal(blocks.length, 3);
    for (const b of blocks) for (const key of ['metro', 'name', 'uuid', 'state', 'image', 'resources.memory', 'resources.vcpus', 'networks.private-ip', 'created']) assert.match(b, new RegExp(`^ *${key.replace('.', '\\.')}: `, 'm'), `${key} in\n${b}`);
    // Generated names and addresses vary: keep the shape.
    const names = [...new Set(r.out.match(/(?<=name: )\S+/g) ?? [])];
    let shown = stable(r.out, w);
    names.forEach((n, i) => (shown = shown.replaceAll(n, `<name-${i}>`)));
    shown = shown.replace(/\b10\.\d+\.\d+\.\d+\b/g, '<ip>');
    snap.match('run --replicas 2', shown);
  });
});

test('instances commands print in every format (snapshots)', async () => {
  await withWorld(async (w) => {
    assert.equal((await w.run(['run', '--image', 'alice/httpserver:latest', '-n', 'web', '--restart', 'on-failure'])).code, 0);
    for (const format of ['kv', 'table', 'json', 'yaml', 'quiet']) {
      const r = await w.run(['-o', format, 'instances', 'list']);
      assert.equal(r.code, 0, r.err);
      snap.match(`instances list -o ${format}`, stable(r.out, w));
    }
    const get = await w.run(['instances', 'get', 'web']);
    snap.match('instances get web', stable(get.out, w));
    const stop = await w.run(['instances', 'stop', 'web', '-o', 'table']);
    assert.equal(stop.code, 0, stop.err);
    snap.match('instances stop web -o table', stable(stop.out, w));
    const logs = await w.run(['instances', 'logs', 'web']);
    assert.equal(logs.out, 'web: hello from web\n');
    const del = await w.run(['instances', 'delete', 'web', '-o', 'quiet']);
    assert.equal(del.out, 'web\n');
    assert.equal((await w.run(['instances', 'list'])).out, 'no instances\n');
  });
});

test('a missing instance names it; a bad token says it is the token (exit 3), not "not found"', async () => {
  await withWorld(async (w) => {
    const missing = await w.run(['instances', 'get', 'ghost']);
    assert.equal(missing.code, 1);
    assert.match(missing.err, /ghost/);
    const bad = await w.run(['images', 'list', '--central'], { UKC_TOKEN: 'ukc_' + '0'.repeat(32) + '_' + 'A'.repeat(43) });
    assert.equal(bad.code, 3);
    assert.match(bad.err, /API token was rejected by http:\/\/127\.0\.0\.1:\d+ \(invalid token\): the token came from UKC_TOKEN/);
    assert.doesNotMatch(bad.err, /not found/);
  });
});

test('nothing listening: exit 4 naming the address and how to start one', async () => {
  await withWorld(async (w) => {
    const r = await w.run(['metros', 'list'], {});
    assert.equal(r.code, 0, r.err);
    const cfg = loadConfig(w.configPath);
    cfg.profiles.dev!.controlplane = 'http://127.0.0.1:1';
    saveConfig(w.configPath, cfg);
    const down = await w.run(['metros', 'list']);
    assert.equal(down.code, 4);
    assert.match(down.err, /cannot reach the platform at http:\/\/127\.0\.0\.1:1 .*ukcd dev/);
  });
});

test('login checks the token with the control plane and writes the profile; a bad one writes nothing', async () => {
  await withWorld(async (w) => {
    const fresh = join(w.dir, 'fresh.yaml');
    const bad = await w.run(['login', '--token', 'ukc_' + '1'.repeat(32) + '_' + 'B'.repeat(43), '--controlplane', w.cp.url, '--config', fresh]);
    assert.equal(bad.code, 3);
    assert.throws(() => readFileSync(fresh));
    w.cp.nodes.register({ name: 'node1', metro: 'fra', api: 'http://127.0.0.1:9000', registry: '127.0.0.1:9000' });
    const ok = await w.run(['login', '--token', w.token, '--controlplane', w.cp.url, '--config', fresh, '--profile', 'work']);
    assert.equal(ok.code, 0, ok.err);
    const cfg = loadConfig(fresh);
    assert.equal(cfg.currentProfile, 'work');
    assert.equal(cfg.profiles.work!.account, 'alice');
    assert.deepEqual(cfg.profiles.work!.metros, { fra: { api: 'http://127.0.0.1:9000', registry: '127.0.0.1:9000' } });
    const shown = await w.run(['profiles', 'show', '--config', fresh]);
    assert.match(shown.out, /token: set/);
    assert.doesNotMatch(shown.out, /ukc_/);
  });
});

test('usage errors exit 2 with the usage line', async () => {
  await withWorld(async (w) => {
    const r = await w.run(['run']);
    assert.equal(r.code, 2);
    assert.match(r.err, /give a directory to build, or --image REF/);
    assert.equal((await w.run(['-o', 'xml', 'instances', 'list'])).code, 2);
    assert.equal((await w.run(['run', '--image', 'a/b', '-m', 'lots'])).code, 2);
    assert.equal((await w.run(['run', '--image', 'a/b', '-p', '99999:1'])).code, 2);
  });
});

test('run --dry-run shows the request without creating anything', async () => {
  await withWorld(async (w) => {
    const r = await w.run(['run', '--dry-run', '--image', 'alice/httpserver', '-p', '443:8080', '--scale-to-zero', 'policy=on,cooldown-time=1000', '-m', '1G']);
    assert.equal(r.code, 0, r.err);
    const req = JSON.parse(r.out) as Record<string, unknown>;
    assert.equal(req.memory_mb, 1024);
    assert.deepEqual(req.scale_to_zero, { policy: 'on', cooldown_time_ms: 1000 });
    const services = (req.service_group as { services: { port: number; destination_port: number; handlers: string[] }[] }).services;
    assert.deepEqual(
      services.map((s) => [s.port, s.destination_port, [...s.handlers].sort()]).sort((a, b) => Number(a[0]) - Number(b[0])),
      [
        [80, 443, ['http', 'redirect']],
        [443, 8080, ['http', 'tls']],
      ],
    );
    assert.doesNotMatch(r.out, /ukc_/);
    assert.equal(w.h.driver.runs.length, 0);
  });
});

test('a digest-pinned --image runs exactly that manifest (the docs\' third workflow); a malformed digest is a usage error', async () => {
  await withWorld(async (w) => {
    const digest = `sha256:${'c'.repeat(64)}`;
    w.h.resolver.add(`${w.cp.registryHost}/alice/httpserver@${digest}`, {
      digestRef: `${w.cp.registryHost}/alice/httpserver@${digest}`,
      config: { Cmd: ['/bin/httpd', '-f'], Env: ['PATH=/bin'], Labels: {} },
    });
    const r = await w.run(['run', '--image', `httpserver@${digest}`, '-n', 'pinned']);
    assert.equal(r.code, 0, r.err);
    assert.equal(w.h.resolver.requests.at(-1)?.url, `${w.cp.registryHost}/alice/httpserver@${digest}`);
    const tagged = await w.run(['run', '--dry-run', '--image', `alice/httpserver:v1@${digest}`]);
    assert.equal(tagged.code, 0, tagged.err);
    assert.equal((JSON.parse(tagged.out) as { image: string }).image, `${w.cp.registryHost}/alice/httpserver@${digest}`);
    const bad = await w.run(['run', '--image', 'httpserver@sha256:abc']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /invalid digest in "httpserver@sha256:abc"/);
    const rm = await w.run(['img', 'rm', `httpserver@${digest}`]);
    assert.equal(rm.code, 2);
    assert.match(rm.err, /removes tags/);
  });
});

test("the real CLI's names work: group aliases, verb aliases, `help <command>`, and a near miss suggests the name", async () => {
  await withWorld(async (w) => {
    assert.equal((await w.run(['run', '--image', 'alice/httpserver:latest', '-n', 'web'])).code, 0);
    for (const argv of [['vm', 'ls', '-o', 'quiet'], ['instance', 'list', '-o', 'quiet'], ['vms', 'ls', '-o', 'quiet']]) {
      const r = await w.run(argv);
      assert.equal(r.code, 0, `${argv.join(' ')}: ${r.err}`);
      assert.equal(r.out.trim(), 'web');
    }
    for (const verb of ['get', 'show', 'inspect']) {
      const r = await w.run(['inst', verb, 'web']);
      assert.equal(r.code, 0, `${verb}: ${r.err}`);
      assert.match(r.out, /^ +name: web$/m);
    }
    const help = await w.run(['help', 'img']);
    assert.equal(help.code, 0, help.err);
    assert.match(help.out, /unikraft images/);
    const subHelp = await w.run(['help', 'images', 'list']);
    assert.equal(subHelp.code, 0, subHelp.err);
    assert.match(subHelp.out, /--all/);
    const typo = await w.run(['imags', 'ls']);
    assert.equal(typo.code, 2);
    assert.match(typo.err, /unknown command "imags"; did you mean "images"\?/);
    const subTypo = await w.run(['instances', 'lsit']);
    assert.equal(subTypo.code, 2);
    assert.match(subTypo.err, /unknown subcommand "lsit"; did you mean "list"\?/);
    const far = await w.run(['frobnicate']);
    assert.doesNotMatch(far.err, /did you mean/);
  });
});

test('logs --tail counts lines, as the real CLI does (the unfinished last line counts as one); --tail 0 prints nothing', async () => {
  await withWorld(async (w) => {
    assert.equal((await w.run(['run', '--image', 'alice/httpserver:latest', '-n', 'web'])).code, 0);
    const run = w.h.driver.runs.at(-1)!;
    run.hooks.onOutput(Buffer.from('one\ntwo\nthree\npart'));
    const two = await w.run(['instances', 'logs', 'web', '--tail', '2']);
    assert.equal(two.code, 0, two.err);
    assert.equal(two.out, 'web: three\nweb: part\n');
    const all = await w.run(['instances', 'logs', 'web', '--tail', '-1']);
    assert.equal(all.out, 'web: hello from web\nweb: one\nweb: two\nweb: three\nweb: part\n');
    assert.equal((await w.run(['vm', 'logs', 'web', '--tail', '0'])).out, '');
    const bad = await w.run(['instances', 'logs', 'web', '--tail', '5k']);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /--tail 5k: give a number of lines/);
  });
});
