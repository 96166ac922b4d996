// The `micro` runtime's own limits on real sandboxes (issue 11; security cases 20 and 21 in
// test/security/README.md): secrets never on a command line, cold or warm start. Needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { MicroDriver } from '../../src/node/runtime/micro.js';
import type { RuntimeEvent, RuntimeHooks } from '../../src/node/runtime/driver.js';
import type { FreezableHandle } from '../../src/node/instances/lifecycle.js';
import { busyboxRootfs, cleanupEnv, newEnv, type TestEnv } from './node-support.js';

const root = process.getuid?.() === 0;

interface Recorded {
  events: RuntimeEvent[];
  output: Buffer[];
  hooks: RuntimeHooks;
  wait(type: RuntimeEvent['type'], timeoutMs: number): Promise<RuntimeEvent>;
}

function recorder(): Recorded {
  const events: RuntimeEvent[] = [];
  const output: Buffer[] = [];
  return {
    events,
    output,
    hooks: { onEvent: (e) => void events.push(e), onOutput: (b) => void output.push(Buffer.from(b)) },
    async wait(type, timeoutMs) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const e = events.find((x) => x.type === type);
        if (e) return e;
        if (Date.now() > deadline) throw new Error(`no ${type} event within ${timeoutMs} ms: ${JSON.stringify(events)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

async function withDriver(name: string, poolSize: number, fn: (env: TestEnv, driver: MicroDriver, rootfs: string) => Promise<void>, limits: Record<string, number> = {}): Promise<void> {
  const env = newEnv(name);
  const rootfs = busyboxRootfs(env.dir, 'limits\n');
  const driver = new MicroDriver({ runsDir: join(env.dir, 'runs'), cgroupParent: env.cgroupParent, limits: { launcherPoolSize: poolSize, ...limits } });
  try {
    await driver.init();
    await driver.poolFilled();
    await fn(env, driver, rootfs);
  } finally {
    await driver.close();
    await cleanupEnv(env);
  }
}

function start(driver: MicroDriver, rootfs: string, args: string[], env: Record<string, string>, hooks: RuntimeHooks): Promise<FreezableHandle> {
  return driver.start(
    {
      uuid: crypto.randomUUID(),
      name: 'limits',
      owner: 'alice',
      image: 'test/limits@sha256:' + '0'.repeat(64),
      rootfs: { kind: 'cpio', path: rootfs },
      args,
      env: { PATH: '/bin', ...env },
      memoryMb: 64,
      vcpus: 1,
      privateFqdn: 'limits.internal',
    },
    hooks,
  );
}

/** Every /proc/<pid>/cmdline on the host that holds `needle`. */
function cmdlinesHolding(needle: string): string[] {
  const hits: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const text = readFileSync(`/proc/${pid}/cmdline`);
      if (text.includes(needle)) hits.push(`${pid}: ${text.toString().replace(/\0/g, ' ')}`);
    } catch {
      // gone
    }
  }
  return hits;
}

for (const [how, poolSize] of [['cold', 0], ['warm', 1]] as const) {
  test(`row 21: secrets on command lines — a ${how} start's env secret and args are in no /proc/*/cmdline but reach the app`, async (t) => {
    if (!root) return t.skip('needs root');
    await withDriver(`secret-${how}`, poolSize, async (_env, driver, rootfs) => {
      const secret = `s3cret-${crypto.randomUUID()}`;
      const rec = recorder();
      const handle = await start(driver, rootfs, ['/bin/sh', '-c', 'echo "pw=$DB_PASSWORD"; exec sleep 30'], { DB_PASSWORD: secret }, rec.hooks);
      await rec.wait('started', 10_000);
      const deadline = Date.now() + 5000;
      while (!Buffer.concat(rec.output).toString().includes(`pw=${secret}`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.match(Buffer.concat(rec.output).toString(), new RegExp(`pw=${secret}`), 'the app got the env');
      assert.deepEqual(cmdlinesHolding(secret), []);
      assert.deepEqual(cmdlinesHolding('DB_PASSWORD'), []);
      await handle.kill();
      await rec.wait('exited', 10_000);
    });
  });
}

test('row 21: NUL in args or env is refused at start with EINVAL (create refuses it first, see src/node/api.test.ts)', async (t) => {
  if (!root) return t.skip('needs root');
  await withDriver('secret-nul', 0, async (_env, driver, rootfs) => {
    await assert.rejects(start(driver, rootfs, ['/bin/echo', 'a\0b'], {}, recorder().hooks), /NUL/);
    await assert.rejects(start(driver, rootfs, ['/bin/echo'], { X: 'a\0b' }, recorder().hooks), /NUL/);
  });
});

test('row 20: the writable layer is a capped tmpfs — writing past writableLayerMaxBytes fails with ENOSPC inside, nothing lands on the host disk', async (t) => {
  if (!root) return t.skip('needs root');
  await withDriver('upper-cap', 0, async (_env, driver, rootfs) => {
    const rec = recorder();
    const script = 'dd if=/dev/zero of=/big bs=1M count=32 2>&1; echo "dd rc=$?"; grep " / / " /proc/self/mountinfo; echo small > /ok && cat /ok; sleep 30';
    const handle = await start(driver, rootfs, ['/bin/sh', '-c', script], {}, rec.hooks);
    const ref = JSON.parse(handle.runtimeRef) as { runDir: string };
    const deadline = Date.now() + 10_000;
    while (!/dd rc=\d+[\s\S]*(small|No space)/.test(Buffer.concat(rec.output).toString()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const out = Buffer.concat(rec.output).toString();
    assert.match(out, /No space left on device/, out);
    assert.match(out, /dd rc=1/, out);
    assert.deepEqual(readdirSync(join(ref.runDir, 'upper')), [], 'the host directory under the tmpfs stays empty');
    await handle.kill();
    await rec.wait('exited', 10_000);
  }, { writableLayerMaxBytes: 8 * 1024 * 1024 });
});

test('row 20: the console file is capped by the launcher itself — a flood with nobody reading never takes it past consoleFileMaxBytes', async (t) => {
  if (!root) return t.skip('needs root');
  await withDriver('console-cap', 1, async (_env, driver, rootfs) => {
    const cap = 64 * 1024;
    const rec = recorder();
    const handle = await start(driver, rootfs, ['/bin/sh', '-c', 'i=0; while [ $i -lt 3000 ]; do echo "line $i xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"; i=$((i+1)); done; echo done-flood; sleep 30'], {}, rec.hooks);
    const ref = JSON.parse(handle.runtimeRef) as { runDir: string };
    // Like a node that is down: nobody reads or cuts the file from here on.
    handle.detach();
    const consolePath = join(ref.runDir, 'console');
    let max = 0;
    const deadline = Date.now() + 15_000;
    for (;;) {
      const size = statSync(consolePath).size;
      max = Math.max(max, size);
      if (readFileSync(consolePath, 'utf8').includes('done-flood') || Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.match(readFileSync(consolePath, 'utf8'), /done-flood/, 'the newest output is kept');
    assert.ok(max <= cap, `console reached ${max} bytes, cap ${cap}`);
    const rec2 = recorder();
    const again = await driver.adopt({ uuid: (JSON.parse(handle.runtimeRef) as { uuid: string }).uuid, name: 'limits', runtimeRef: handle.runtimeRef }, rec2.hooks);
    assert.ok(again, 'still running, adopted');
    await again.kill();
    await rec2.wait('exited', 10_000);
  }, { consoleFileMaxBytes: 64 * 1024 });
});

/** Waits until the run's output holds `pattern`; returns the output. */
async function outputMatching(rec: Recorded, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const out = Buffer.concat(rec.output).toString();
    if (pattern.test(out) || Date.now() > deadline) return out;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Host uid (real, effective, saved, fs) of a host pid, from /proc/<pid>/status. */
function hostUids(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('Uid:')) ?? '';
  return line.split(/\s+/).slice(1).map(Number);
}

test('rows 16 and 20: each instance runs in its own user namespace — 0..65535 inside map to a host range of its own, files keep the image owners, uid 0 inside is not host root, nested unshare -U refused; a restarted driver keeps recorded ranges taken', async (t) => {
  if (!root) return t.skip('needs root');
  await withDriver('userns', 1, async (env, driver, rootfs) => {
    const script = 'cat /proc/self/uid_map; ls -ln /bin/busybox /www/index.html; echo mine > /mine; ls -ln /mine; busybox unshare -U -r busybox id; echo "unshare rc=$?"; echo "pid=$$"; exec sleep 30';
    const recs = [recorder(), recorder()];
    const handles = [];
    for (const rec of recs) handles.push(await start(driver, rootfs, ['/bin/sh', '-c', script], {}, rec.hooks));
    const bases: number[] = [];
    for (const rec of recs) {
      const out = await outputMatching(rec, /pid=\d+/);
      const map = /^\s*0\s+(\d+)\s+65536$/m.exec(out);
      assert.ok(map, out);
      bases.push(Number(map[1]));
      assert.ok(Number(map[1]) >= driver.hostIds.first, out);
      // The image's files are root's in the image: root's inside too (idmapped layers), as is what the app writes.
      assert.match(out, /\s0\s+0\s+\d+ .*\/bin\/busybox/, out);
      assert.match(out, /\s0\s+0\s+\d+ .*\/mine/, out);
      assert.match(out, /unshare rc=1/, out);
    }
    assert.notEqual(bases[0], bases[1], 'two instances never share a range');
    for (const [i, h] of handles.entries()) {
      const ref = JSON.parse(h.runtimeRef) as { idBase: number };
      assert.equal(ref.idBase, bases[i], 'the range is recorded in the run reference');
    }
    // On the host, the app (and what it runs) is the range's first uid, not root.
    const sleepers = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('sleep') && (readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(env.cgroupParent));
      } catch {
        return false;
      }
    });
    assert.equal(sleepers.length, 2);
    for (const pid of sleepers) for (const uid of hostUids(pid)) assert.ok(bases.includes(uid), `pid ${pid} runs as host uid ${uid}`);

    // A new driver over the same runs (a node restarted after kill -9) keeps both ranges taken.
    const again = new MicroDriver({ runsDir: join(env.dir, 'runs'), cgroupParent: env.cgroupParent, limits: { launcherPoolSize: 0 } });
    await again.init();
    assert.equal(again.hostIds.inUse, 2);
    const third = again.hostIds.take();
    assert.ok(!bases.includes(third));
    for (const h of handles) await h.kill();
    for (const rec of recs) await rec.wait('exited', 10_000);
    assert.equal(driver.hostIds.inUse, 0, 'ranges are given back once the runs are cleaned up');
  });
});
