// The config in the running roles: a limit from ukcd.yaml takes effect in `ukcd registry`,
// the listener's idle timeout from the environment cuts a stalled client, a bad file exits
// 2 with one line, `ukcd config print` names sources, and every setting reaches a role.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, describe, it } from 'node:test';
import { runCommandLine, type CommandContext } from '../util/command.js';
import { DEV_HEARTBEAT_INTERVAL, loadDaemonConfig, parseSettingValue, SETTINGS, type DaemonConfig } from '../config/index.js';
import { controlPlaneSettings, logLevelOf, nodeSettings, registrySettings } from './config.js';
import { daemonCommands } from './commands.js';

const dir = mkdtempSync(join(tmpdir(), 'ukc-daemon-config-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Running {
  code: Promise<number>;
  out: () => string;
  err: () => string;
  /** Resolves with the first match of `re` on stdout. */
  waitFor(re: RegExp): Promise<RegExpMatchArray>;
  stop(): Promise<number>;
}

function ukcd(argv: string[], env: NodeJS.ProcessEnv = {}): Running {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  const waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  stdout.on('data', (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) {
      const m = out.match(w.re);
      if (m) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(m);
      }
    }
  });
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ac = new AbortController();
  const ctx: CommandContext = { cwd: dir, env: { UKC_HOME: join(dir, 'home'), ...env }, stdout, stderr, signal: ac.signal };
  const code = runCommandLine('ukcd', daemonCommands, argv, ctx);
  return {
    code,
    out: () => out,
    err: () => err,
    waitFor(re) {
      const m = out.match(re);
      if (m) return Promise.resolve(m);
      return new Promise((resolve, reject) => {
        waiters.push({ re, resolve });
        void code.then((c) => reject(new Error(`ukcd exited ${c} before ${re}: ${err}`)));
      });
    },
    async stop() {
      ac.abort();
      return code;
    },
  };
}

function sha256(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

async function pushMonolithic(base: string, data: Buffer): Promise<number> {
  const res = await fetch(`${base}/v2/cfg/app/blobs/uploads/?digest=${sha256(data)}`, {
    method: 'POST',
    body: data,
    headers: { 'content-type': 'application/octet-stream' },
  });
  await res.arrayBuffer();
  return res.status;
}

describe('ukcd registry with ukcd.yaml', () => {
  it('a blob limit from the file takes effect; the idle timeout from UKC_LISTENER_IDLE_TIMEOUT cuts a stalled upload', async () => {
    const cfg = join(dir, 'registry.yaml');
    writeFileSync(cfg, '# limits of this registry\nregistry:\n  max_blob_bytes: 1KiB\n');
    const reg = ukcd(['registry', '--listen', '127.0.0.1:0', '--data', join(dir, 'reg'), '--config', cfg], { UKC_LISTENER_IDLE_TIMEOUT: '500ms', UKC_LOG_LEVEL: 'silent' });
    try {
      const [, url] = await reg.waitFor(/registry listening on (\S+)/);
      assert.equal(await pushMonolithic(url!, Buffer.alloc(2000, 1)), 413, 'above registry.max_blob_bytes');
      assert.equal(await pushMonolithic(url!, Buffer.alloc(1000, 2)), 201, 'below it');

      // A client that sends half a body and stalls is cut after the configured idle time.
      const { port } = new URL(url!);
      const started = Date.now();
      const closedAfter = await new Promise<number>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => {
          socket.write(`POST /v2/cfg/app/blobs/uploads/?digest=${sha256(Buffer.alloc(800))} HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\n\r\n${'\0'.repeat(100)}`);
        });
        socket.on('error', () => undefined);
        socket.on('close', () => resolve(Date.now() - started));
        setTimeout(() => reject(new Error('the stalled connection was not cut')), 10_000).unref();
        socket.resume();
      });
      assert.ok(closedAfter >= 400 && closedAfter < 5000, `cut after ${closedAfter} ms`);
    } finally {
      assert.equal(await reg.stop(), 0);
    }
  });

  it('registry gc takes its grace period from the environment; --grace-period beats it', async () => {
    // The blob pushed above has no manifest: garbage once its grace period is over.
    const kept = ukcd(['registry', 'gc', '--data', join(dir, 'reg'), '--dry-run']);
    assert.equal(await kept.code, 0, kept.err());
    assert.match(kept.out(), /would sweep 0 blobs .* kept 1 within the grace period/);
    const swept = ukcd(['registry', 'gc', '--data', join(dir, 'reg'), '--dry-run'], { UKC_GC_GRACE_PERIOD: '0s' });
    assert.equal(await swept.code, 0, swept.err());
    assert.match(swept.out(), /would sweep 1 blobs/);
    const flag = ukcd(['registry', 'gc', '--data', join(dir, 'reg'), '--dry-run', '--grace-period', '1h'], { UKC_GC_GRACE_PERIOD: '0s' });
    assert.equal(await flag.code, 0, flag.err());
    assert.match(flag.out(), /would sweep 0 blobs/);
  });

  it('a flag beats the file: --set over ukcd.yaml', async () => {
    const cfg = join(dir, 'registry-set.yaml');
    writeFileSync(cfg, 'registry:\n  max_blob_bytes: 1KiB\n');
    const reg = ukcd(['registry', '--listen', '127.0.0.1:0', '--data', join(dir, 'reg2'), '--config', cfg, '--set', 'registry.max_blob_bytes=4KiB', '--log-level', 'silent']);
    try {
      const [, url] = await reg.waitFor(/registry listening on (\S+)/);
      assert.equal(await pushMonolithic(url!, Buffer.alloc(2000, 3)), 201);
      assert.equal(await pushMonolithic(url!, Buffer.alloc(5000, 3)), 413);
    } finally {
      await reg.stop();
    }
  });

  it('a bad file stops every role before it starts: exit 2, one line naming the place, no stack', async () => {
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, 'registry:\n  max_blob_bytes: 1KiB\n  upload_timeout: 5m\n');
    for (const argv of [
      ['registry', '--data', join(dir, 'reg3'), '--config', cfg],
      ['registry', 'gc', '--data', join(dir, 'reg3'), '--config', cfg],
      ['controlplane', '--data', join(dir, 'cp'), '--config', cfg],
      ['node', '--home', join(dir, 'node'), '--no-auth', '--config', cfg],
      ['dev', '--home', join(dir, 'dev'), '--config', cfg],
      ['config', 'print', '--config', cfg],
    ]) {
      const run = ukcd(argv);
      assert.equal(await run.code, 2, argv.join(' '));
      assert.equal(run.err(), `ukcd ${argv[0]}: ${cfg}:3:3: unknown key "registry.upload_timeout" (did you mean registry.upload_session_timeout?)\n`);
    }
    const wrong = ukcd(['registry', '--data', join(dir, 'reg3')], { UKC_REGISTRY_MAX_BLOB_BYTES: 'big' });
    assert.equal(await wrong.code, 2);
    assert.match(wrong.err(), /^ukcd registry: UKC_REGISTRY_MAX_BLOB_BYTES: registry\.max_blob_bytes must be a size in bytes .*\n$/);
  });
});

describe('ukcd controlplane with settings', () => {
  it('its API body limit and its central registry blob limit come from the file and --set', async () => {
    const cfg = join(dir, 'cp.yaml');
    writeFileSync(cfg, 'controlplane:\n  max_body_bytes: 2KiB\n');
    const data = join(dir, 'cp-data');
    const cp = ukcd(['controlplane', '--listen', '127.0.0.1:0', '--data', data, '--config', cfg, '--set', 'registry.max_blob_bytes=1KiB', '--log-level', 'silent']);
    try {
      const [, url] = await cp.waitFor(/control plane listening on (\S+)/);
      const token = readFileSync(join(data, 'root-token'), 'utf8').trim();
      const big = await fetch(`${url}/v1/nodes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x'.repeat(4000) }),
      });
      await big.arrayBuffer();
      assert.equal(big.status, 413, 'above controlplane.max_body_bytes');
      const blob = Buffer.alloc(2000, 4);
      const push = await fetch(`${url}/v2/root/app/blobs/uploads/?digest=${sha256(blob)}`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`root:${token}`).toString('base64')}`, 'content-type': 'application/octet-stream' },
        body: blob,
      });
      await push.arrayBuffer();
      assert.equal(push.status, 413, 'above registry.max_blob_bytes, in the central registry');
    } finally {
      assert.equal(await cp.stop(), 0);
    }
  });
});

describe('ukcd config', () => {
  it('print shows every setting with its value and source; docs prints the table', async () => {
    const home = join(dir, 'print-home');
    const cfg = join(dir, 'print.yaml');
    writeFileSync(cfg, 'gateway:\n  wake_timeout: 45s\n');
    const run = ukcd(['config', 'print', '--config', cfg, '--set', 'log.level=debug', '--home', home], { UKC_INSTANCES_MAX_INSTANCES: '50' });
    assert.equal(await run.code, 0, run.err());
    const out = run.out();
    assert.equal(out.split('\n').filter((l) => / = /.test(l)).length, SETTINGS.length);
    assert.match(out, /^gateway\.wake_timeout += 45s +file .*print\.yaml:2:17$/m);
    assert.match(out, /^instances\.max_instances += 50 +env UKC_INSTANCES_MAX_INSTANCES$/m);
    assert.match(out, /^log\.level += debug +flag --set$/m);
    assert.match(out, /^lifecycle\.stop_grace +?= 10s +default$/m);

    const docs = ukcd(['config', 'docs']);
    assert.equal(await docs.code, 0);
    assert.match(docs.out(), /^\| `registry\.max_blob_bytes` \| bytes \| `64GiB` \|/m);
  });
});

/** Everything the roles take from a config, as one value: what `nodeSettings` & co. hand out. */
function roleView(config: DaemonConfig): string {
  return JSON.stringify({
    node: nodeSettings(config),
    controlplane: controlPlaneSettings(config),
    registry: registrySettings(config),
    log: logLevelOf(config),
    devHeartbeat: config.number(DEV_HEARTBEAT_INTERVAL.key),
  });
}

describe('reachability', () => {
  it('every setting of the table changes what some role is given', () => {
    const base = roleView(loadDaemonConfig({ home: dir, env: {} }));
    for (const s of SETTINGS) {
      let other: string | number;
      if (s.kind === 'enum') other = s.values!.find((v) => v !== s.default)!;
      else other = (s.default as number) > (s.min ?? 0) ? (s.default as number) - 1 : (s.default as number) + 1;
      parseSettingValue(s, other);
      const changed = roleView(loadDaemonConfig({ home: dir, env: {}, sets: [`${s.key}=${other}`] }));
      assert.notEqual(changed, base, `${s.key} reaches no role`);
    }
  });
});
