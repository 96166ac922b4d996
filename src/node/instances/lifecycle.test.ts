import { test } from 'node:test';
import assert from 'node:assert/strict';
import { makeHarness, type Harness } from '../harness.test-support.js';
import { settle } from '../test-doubles.test-support.js';
import { restartDelayMs, DEFAULT_LIFECYCLE_LIMITS } from './lifecycle.js';
import { ALLOWED_TRANSITIONS, INSTANCE_STATES, canTransition } from './model.js';

const IMG = 'alice/httpserver:latest';

async function withNode(fn: (h: Harness) => Promise<void>): Promise<void> {
  const h = await makeHarness();
  try {
    await fn(h);
  } finally {
    await h.cleanup();
  }
}

async function get(h: Harness, name: string): Promise<Record<string, unknown>> {
  const r = await h.call('GET', `/v1/instances/${name}`);
  const item = r.body.data.instances?.[0];
  assert.ok(item, `instance ${name}`);
  return item;
}

test('restart backoff: immediate, 5s, 10s, 20s ... capped at 5 min', () => {
  const delays = Array.from({ length: 10 }, (_, i) => restartDelayMs(i, DEFAULT_LIFECYCLE_LIMITS));
  assert.deepEqual(delays, [0, 5000, 10000, 20000, 40000, 80000, 160000, 300000, 300000, 300000]);
  assert.equal(restartDelayMs(500, DEFAULT_LIFECYCLE_LIMITS), 300000);
});

test('state machine table: deleted is final, every state can reach deleted or stopped', () => {
  assert.deepEqual(ALLOWED_TRANSITIONS.deleted, []);
  for (const s of INSTANCE_STATES) {
    if (s === 'deleted') continue;
    assert.ok(canTransition(s, 'deleted'), s);
  }
  assert.ok(!canTransition('stopped', 'running'), 'a start always passes through starting');
  assert.ok(!canTransition('stopping', 'running'));
});

test('app exit codes: 3 app exited with exit_code; signal is a crash (1) with stop_code; OOM is 5', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'e', replicas: 2 });
    await settle();
    h.driver.exit('e', { code: 7 });
    h.driver.exit('e-1', { code: null, signal: 'SIGSEGV' });
    h.driver.exit('e-2', { code: null, signal: 'SIGKILL', oom: true });
    const e = await get(h, 'e');
    assert.equal(e.state, 'stopped');
    assert.equal(e.stop_reason, 3);
    assert.equal(e.exit_code, 7);
    const e1 = await get(h, 'e-1');
    assert.equal(e1.stop_reason, 1);
    assert.equal(e1.stop_code, 11);
    const e2 = await get(h, 'e-2');
    assert.equal(e2.stop_reason, 5);
    assert.equal(e2.stop_code, 9);
    assert.ok(typeof e.stopped_at === 'string');
  }));

test('restart_policy on-failure: follows the backoff schedule, not for exit 0; always restarts on exit 0', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'r', restart_policy: 'on-failure' });
    await h.call('POST', '/v1/instances', { image: IMG, name: 'ok', restart_policy: 'on-failure' });
    await h.call('POST', '/v1/instances', { image: IMG, name: 'al', restart_policy: 'always' });
    await settle();
    const expected = [0, 5000, 10000, 20000];
    for (let i = 0; i < expected.length; i++) {
      h.driver.exit('r', { code: 1 });
      const rec = await get(h, 'r');
      assert.equal(rec.state, 'stopped', `failure ${i}`);
      assert.deepEqual(rec.restart, { attempt: i + 1, next_at: new Date(h.clock.now() + expected[i]!).toISOString() });
      if (expected[i]! > 0) {
        await h.clock.advance(expected[i]! - 1);
        assert.equal((await get(h, 'r')).state, 'stopped', 'not before its time');
        await h.clock.advance(1);
      } else await h.clock.advance(0);
      await settle();
      const after = await get(h, 'r');
      assert.equal(after.state, 'running', `restart ${i}`);
      assert.equal(after.restart_count, i + 1);
    }
    h.driver.exit('ok', { code: 0 });
    await h.clock.advance(0);
    assert.equal((await get(h, 'ok')).state, 'stopped');
    h.driver.exit('al', { code: 0 });
    await h.clock.advance(0);
    await settle();
    assert.equal((await get(h, 'al')).state, 'running');
    assert.equal((await get(h, 'al')).restart_count, 1);
  }));

test('backoff resets after 10 s healthy; a user stop never restarts and cancels a pending restart', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'h', restart_policy: 'always' });
    await settle();
    h.driver.exit('h', { code: 1 });
    await h.clock.advance(0);
    await settle();
    h.driver.exit('h', { code: 1 });
    assert.equal(((await get(h, 'h')).restart as { attempt: number }).attempt, 2);
    await h.clock.advance(5000);
    await settle();
    assert.equal((await get(h, 'h')).state, 'running');
    await h.clock.advance(10_000);
    assert.equal(((await get(h, 'h')).restart as { attempt: number }).attempt, 0, 'healthy for 10 s');
    h.driver.exit('h', { code: 1 });
    assert.equal(((await get(h, 'h')).restart as { next_at: string }).next_at, new Date(h.clock.now()).toISOString(), 'immediate again');
    // Stop while the restart is pending: it stays stopped.
    await h.call('PUT', '/v1/instances/h/stop');
    await h.clock.advance(60_000);
    const rec = await get(h, 'h');
    assert.equal(rec.state, 'stopped');
    assert.equal((rec.restart as { next_at?: string }).next_at, undefined);
    // A user stop of a running instance with restart_policy always does not restart.
    await h.call('PUT', '/v1/instances/h/start');
    await settle();
    await h.call('PUT', '/v1/instances/h/stop');
    await h.clock.advance(60_000);
    assert.equal((await get(h, 'h')).state, 'stopped');
    assert.equal((await get(h, 'h')).stop_reason, 15);
  }));

test('start failure is a platform stop (4) logged in the instance log', () =>
  withNode(async (h) => {
    h.driver.failStart.add('bad');
    await h.call('POST', '/v1/instances', { image: IMG, name: 'bad' });
    const rec = await get(h, 'bad');
    assert.equal(rec.state, 'stopped');
    assert.equal(rec.stop_reason, 4);
    const log = await h.call('GET', '/v1/instances/bad/log');
    assert.match(Buffer.from(String(log.body.data.instances?.[0]?.output), 'base64').toString(), /start failed: rootfs missing/);
  }));

test('delete-on-stop: the instance disappears when it stops; waiting for deleted resolves', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'tmp', features: ['delete-on-stop'] });
    await settle();
    const waiting = h.call('GET', '/v1/instances/tmp/wait', { state: 'deleted', timeout_ms: 1000 });
    await settle();
    h.driver.exit('tmp', { code: 0 });
    const w = await waiting;
    assert.equal(w.body.data.instances?.[0]?.state, 'deleted');
    assert.equal((await h.call('GET', '/v1/instances/tmp')).status, 404);
  }));

test('create with timeout_s waits until running; reports ETIMEDOUT per instance otherwise', () =>
  withNode(async (h) => {
    const ok = await h.call('POST', '/v1/instances', { image: IMG, name: 'w', timeout_s: 5 });
    assert.equal(ok.body.status, 'success');
    assert.equal(ok.body.data.instances?.[0]?.state, 'running');
    h.driver.autoStarted = false;
    const slow = h.call('POST', '/v1/instances', { image: IMG, name: 'slow', timeout_s: 2 });
    for (let i = 0; i < 20 && h.clock.pending().length === 0; i++) await settle();
    await h.clock.advance(2000);
    const r = await slow;
    assert.equal(r.body.status, 'error');
    assert.equal(r.body.errors?.[0]?.error, 110);
    assert.equal(r.body.errors?.[0]?.name, 'slow');
    assert.equal((await get(h, 'slow')).state, 'starting');
  }));

test('a create that waits answers a failed start at once (EIO, the instance stopped with reason 4), not after its timeout', () =>
  withNode(async (h) => {
    h.driver.failStart.add('doomed');
    // No clock advance: the answer must come without the 300 s wait running out.
    const r = await h.call('POST', '/v1/instances', { image: IMG, name: 'doomed', timeout_s: 300 });
    assert.equal(r.body.status, 'error');
    assert.equal(r.body.errors?.[0]?.error, 5);
    assert.match(String(r.body.errors?.[0]?.message), /could not be started/);
    const rec = await get(h, 'doomed');
    assert.equal(rec.state, 'stopped');
    assert.equal(rec.stop_reason, 4);
    assert.equal(h.clock.pending().length, 0, 'no wait timer left behind');
  }));

test('recovery: survivors are adopted, lost runs follow their policy, pending restarts re-armed', () =>
  withNode(async (h) => {
    await h.call('POST', '/v1/instances', { image: IMG, name: 'keep' });
    await h.call('POST', '/v1/instances', { image: IMG, name: 'lost-never' });
    await h.call('POST', '/v1/instances', { image: IMG, name: 'lost-always', restart_policy: 'always' });
    await h.call('POST', '/v1/instances', { image: IMG, name: 'lost-tmp', features: ['delete-on-stop'] });
    await h.call('POST', '/v1/instances', { image: IMG, name: 'pending', restart_policy: 'on-failure' });
    await h.call('POST', '/v1/instances', { image: IMG, name: 'idle', autostart: false });
    await settle();
    h.driver.exit('pending', { code: 1 });
    await h.clock.advance(0);
    await settle();
    h.driver.exit('pending', { code: 1 }); // second failure: restart due in 5 s
    const keepRef = h.driver.current('keep');
    assert.ok(keepRef);
    const keepUuid = String((await get(h, 'keep')).uuid);
    // The old controller goes away; only `keep` survives in the runtime.
    await h.api.close();
    h.driver.survivors.clear();
    h.driver.survivors.set(keepRef.ref, undefined);
    await h.reopen();
    const report = h.api.recovery;
    assert.deepEqual(report.adopted, [keepUuid]);
    assert.equal(report.rearmed.length, 1);
    assert.equal(report.deleted.length, 1);
    const keep = await get(h, 'keep');
    assert.equal(keep.state, 'running');
    assert.equal(keep.start_count, 1, 'adopted, not restarted');
    const never = await get(h, 'lost-never');
    assert.equal(never.state, 'stopped');
    assert.equal(never.stop_reason, 4);
    await h.clock.advance(0);
    await settle();
    const always = await get(h, 'lost-always');
    assert.equal(always.state, 'running');
    assert.equal(always.restart_count, 1);
    assert.equal((await h.call('GET', '/v1/instances/lost-tmp')).status, 404);
    assert.equal((await get(h, 'idle')).state, 'stopped');
    assert.equal((await get(h, 'pending')).state, 'stopped');
    await h.clock.advance(5000);
    await settle();
    assert.equal((await get(h, 'pending')).state, 'running');
    // The adopted run still reports its exit to the new controller.
    h.driver.exit('keep', { code: 0 });
    assert.equal((await get(h, 'keep')).stop_reason, 3);
    assert.equal((await h.call('GET', '/v1/instances')).body.data.instances?.length, 5);
  }));
