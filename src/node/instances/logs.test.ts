import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { LogRing } from './logs.js';

function ring(capacity: number): { logs: LogRing; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ukc-logs-'));
  return { logs: new LogRing(dir, capacity), dir };
}

test('log ring keeps the last capacity bytes with absolute offsets', (t) => {
  const { logs, dir } = ring(16);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const id = randomUUID();
  logs.append(id, Buffer.from('0123456789'));
  logs.append(id, Buffer.from('abcdefghij'));
  const all = logs.read(id, 0, 100);
  assert.equal(all.output.toString(), '456789abcdefghij');
  assert.deepEqual(all.available, { start: 4, end: 20 });
  assert.deepEqual(all.range, { start: 4, end: 20 });
  assert.equal(logs.read(id, 10, 3).output.toString(), 'abc');
  assert.equal(logs.read(id, -2, 10).output.toString(), 'ij');
  assert.equal(logs.read(id, 20, 10).output.length, 0);
  assert.equal(statSync(join(dir, `${id}.log`)).size, 8 + 16, 'file stays bounded');
});

test('a chunk larger than the ring keeps only its tail', (t) => {
  const { logs, dir } = ring(8);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const id = randomUUID();
  logs.append(id, Buffer.from('abc'));
  logs.append(id, Buffer.from('0123456789ABCDEF'));
  const r = logs.read(id, 0, 100);
  assert.equal(r.output.toString(), '89ABCDEF');
  assert.deepEqual(r.available, { start: 11, end: 19 });
  logs.remove(id);
  assert.deepEqual(logs.read(id, 0, 10).available, { start: 0, end: 0 });
});

test('log ring refuses ids that are not uuids (they name files)', (t) => {
  const { logs, dir } = ring(8);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  assert.throws(() => logs.append('../../etc/passwd', Buffer.from('x')), /invalid instance id/);
});
