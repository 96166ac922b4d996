import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CoalescedSync } from './coalesce.js';

/** A run of the work function that the test finishes by hand. */
interface PendingRun {
  finish(err?: Error): void;
}

function controlled(): { sync: CoalescedSync; runs: PendingRun[]; started: () => number } {
  const runs: PendingRun[] = [];
  const sync = new CoalescedSync(
    () =>
      new Promise<void>((resolve, reject) => {
        runs.push({ finish: (err) => (err ? reject(err) : resolve()) });
      }),
  );
  return { sync, runs, started: () => runs.length };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

test('coalesced sync: callers during a run share the next run, which starts after them', async () => {
  const { sync, runs, started } = controlled();
  const settled: string[] = [];
  const a = sync.request().then(() => settled.push('a'));
  await tick();
  assert.equal(started(), 1);
  // b and c arrive while run 1 is in flight: run 1 may have missed their writes.
  const b = sync.request().then(() => settled.push('b'));
  const c = sync.request().then(() => settled.push('c'));
  await tick();
  assert.equal(started(), 1, 'the second run waits for the first');
  runs[0]!.finish();
  await a;
  await tick();
  assert.deepEqual(settled, ['a']);
  assert.equal(started(), 2, 'one shared run for b and c');
  runs[1]!.finish();
  await Promise.all([b, c]);
  assert.deepEqual(settled.sort(), ['a', 'b', 'c']);
  assert.equal(sync.runs, 2);
  assert.equal(sync.busy, false);
});

test('coalesced sync: a failed run rejects everyone who joined it; the next request runs afresh', async () => {
  const { sync, runs, started } = controlled();
  const first = sync.request();
  await tick();
  const joined = [sync.request(), sync.request()];
  runs[0]!.finish();
  await first;
  await tick();
  runs[1]!.finish(new Error('EIO'));
  for (const p of joined) await assert.rejects(p, /EIO/);
  const later = sync.request();
  await tick();
  assert.equal(started(), 3);
  runs[2]!.finish();
  await later;
});
