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
